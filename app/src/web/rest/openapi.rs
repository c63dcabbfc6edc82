//! The REST API's OpenAPI 3.1 document, generated from the handlers' `#[utoipa::path]`
//! annotations and the types they take and answer, served at `/openapi.json` and browsable at
//! `/api-docs/` (Swagger UI, from the crate's vendored copy: no CDN).

use utoipa::openapi::path::Operation;
use utoipa::openapi::schema::{Object, Type};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{Content, OpenApi, Ref, ResponseBuilder};
use utoipa::{Modify, OpenApi as _};
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouter};
use utoipa_swagger_ui::SwaggerUi;

use crate::web::state::AppState;

/// Where the document is served.
pub const DOCUMENT: &str = "/openapi.json";
/// Where people read it.
pub const PAGE: &str = "/api-docs";

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "OSCAR API",
        description = "The OSCAR-compatible REST API of this platform: services, jobs and their \
            logs, buckets, usage, quotas and the platform's configuration. Errors are plain \
            text naming the field, with OSCAR's status codes.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    modifiers(&Conventions),
    tags(
        (name = "platform", description = "Health, information, status and configuration"),
        (name = "services", description = "Service definitions (OSCAR's FDL as JSON)"),
        (name = "jobs", description = "Invoking services and the jobs they run"),
        (name = "buckets", description = "Buckets in the platform's object store"),
        (name = "usage", description = "Usage metrics and quotas"),
        (name = "registries", description = "Credentials for private image registries"),
        (name = "volumes", description = "Managed volumes: storage that outlives jobs, attached to services"),
        (name = "federation", description = "A service's replicas on other clusters, which take its jobs when they wait here too long"),
    )
)]
struct Document;

/// What holds for every operation, said once: the two ways to sign in, and errors as plain
/// text (a sentence naming the field).
struct Conventions;

impl Modify for Conventions {
    fn modify(&self, openapi: &mut OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "basic",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Basic)),
        );
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
        components.responses.insert(
            "Error".into(),
            ResponseBuilder::new()
                .description("The request was refused: a sentence saying why, naming the field")
                .content(
                    "text/plain",
                    Content::new(Some(Object::with_type(Type::String))),
                )
                .build()
                .into(),
        );
        for item in openapi.paths.paths.values_mut() {
            for operation in operations(item) {
                let responses = &mut operation.responses.responses;
                for range in ["4XX", "5XX"] {
                    responses
                        .entry(range.into())
                        .or_insert_with(|| Ref::from_response_name("Error").into());
                }
            }
        }
        // Operations say `security(())` when anyone may call them; every other one takes
        // the admin's Basic credentials or a bearer token (OIDC access token, or the token
        // the operation names).
        openapi.security = Some(vec![
            utoipa::openapi::security::SecurityRequirement::new("basic", Vec::<String>::new()),
            utoipa::openapi::security::SecurityRequirement::new("bearer", Vec::<String>::new()),
        ]);
    }
}

fn operations(item: &mut utoipa::openapi::PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        &mut item.get,
        &mut item.put,
        &mut item.post,
        &mut item.delete,
        &mut item.head,
        &mut item.patch,
        &mut item.options,
        &mut item.trace,
    ]
    .into_iter()
    .filter_map(Option::as_mut)
}

/// An empty router that collects the documented routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(Document::openapi())
}

/// Adds documented routes and, undocumented, the same paths with a trailing slash: upstream
/// accepts both and clients send either.
pub fn documented(
    router: OpenApiRouter<AppState>,
    (schemas, paths, method_router): UtoipaMethodRouter<AppState>,
) -> OpenApiRouter<AppState> {
    let slashed: Vec<String> = paths.paths.keys().map(|path| format!("{path}/")).collect();
    let router = router.routes((schemas, paths, method_router.clone()));
    slashed.iter().fold(router, |router, path| {
        router.route(path, method_router.clone())
    })
}

/// The document and the page over it.
pub fn serve(document: OpenApi) -> axum::Router<AppState> {
    SwaggerUi::new(PAGE)
        .url(DOCUMENT, document)
        .config(utoipa_swagger_ui::Config::default().validator_url("none"))
        .into()
}
