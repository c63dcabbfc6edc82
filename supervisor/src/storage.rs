//! Object storage as the platform and its jobs reach it: one client configuration for MinIO,
//! RustFS and the embedded store, and the transfers a job needs.

use std::path::Path;
use std::time::Duration;

use aws_sdk_s3::Client;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use tokio::io::AsyncReadExt;

/// Files at least this large are uploaded in parts.
pub const MULTIPART_THRESHOLD: u64 = 32 * 1024 * 1024;
const PART_SIZE: usize = 16 * 1024 * 1024;

/// Path-style addressing and checksums only when required, which MinIO, RustFS and s3s accept.
pub fn client(endpoint: &str, region: &str, access_key: &str, secret_key: &str) -> Client {
    let region = if region.is_empty() {
        "us-east-1"
    } else {
        region
    };
    let mut config = aws_sdk_s3::Config::builder();
    if endpoint.starts_with("http://") {
        // No TLS, so no root certificates: images without any (busybox, alpine without
        // ca-certificates) reach a plain-HTTP store too.
        use aws_smithy_http_client::tls;
        let context = tls::TlsContext::builder()
            .with_trust_store(tls::TrustStore::empty())
            .build()
            .expect("an empty trust store is a valid TLS context");
        config = config.http_client(
            aws_smithy_http_client::Builder::new()
                .tls_provider(tls::Provider::Rustls(
                    tls::rustls_provider::CryptoMode::AwsLc,
                ))
                .tls_context(context)
                .build_https(),
        );
    }
    let config = config
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new(region.to_string()))
        .credentials_provider(Credentials::new(
            access_key, secret_key, None, None, "oscar",
        ))
        .force_path_style(true)
        .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
        .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(5))
                .read_timeout(Duration::from_secs(60))
                .build(),
        )
        .build();
    Client::from_conf(config)
}

/// The message of an SDK error with its source chain (the SDK's Display says only "service
/// error").
pub fn describe(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

pub async fn download(client: &Client, bucket: &str, key: &str, to: &Path) -> Result<(), String> {
    let object = client
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .map_err(|e| format!("cannot download {bucket}/{key}: {}", describe(&e)))?;
    let mut file = tokio::fs::File::create(to)
        .await
        .map_err(|e| format!("cannot create {}: {e}", to.display()))?;
    let mut body = object.body.into_async_read();
    tokio::io::copy(&mut body, &mut file)
        .await
        .map_err(|e| format!("cannot download {bucket}/{key}: {e}"))?;
    Ok(())
}

pub async fn upload(client: &Client, bucket: &str, key: &str, from: &Path) -> Result<(), String> {
    let size = tokio::fs::metadata(from)
        .await
        .map_err(|e| format!("cannot read {}: {e}", from.display()))?
        .len();
    let result = if size >= MULTIPART_THRESHOLD {
        upload_in_parts(client, bucket, key, from).await
    } else {
        let body = ByteStream::from_path(from)
            .await
            .map_err(|e| format!("cannot read {}: {e}", from.display()))?;
        client
            .put_object()
            .bucket(bucket)
            .key(key)
            .body(body)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| describe(&e))
    };
    result.map_err(|e| format!("cannot upload {bucket}/{key}: {e}"))
}

async fn upload_in_parts(
    client: &Client,
    bucket: &str,
    key: &str,
    from: &Path,
) -> Result<(), String> {
    let started = client
        .create_multipart_upload()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .map_err(|e| describe(&e))?;
    let upload_id = started.upload_id().unwrap_or_default().to_string();
    let parts = send_parts(client, bucket, key, &upload_id, from).await;
    let parts = match parts {
        Ok(parts) => parts,
        Err(err) => {
            // Leave no orphaned parts behind in the store.
            let _ = client
                .abort_multipart_upload()
                .bucket(bucket)
                .key(key)
                .upload_id(&upload_id)
                .send()
                .await;
            return Err(err);
        }
    };
    client
        .complete_multipart_upload()
        .bucket(bucket)
        .key(key)
        .upload_id(&upload_id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(parts))
                .build(),
        )
        .send()
        .await
        .map(|_| ())
        .map_err(|e| describe(&e))
}

async fn send_parts(
    client: &Client,
    bucket: &str,
    key: &str,
    upload_id: &str,
    from: &Path,
) -> Result<Vec<CompletedPart>, String> {
    let mut file = tokio::fs::File::open(from)
        .await
        .map_err(|e| format!("cannot read {}: {e}", from.display()))?;
    let mut parts = Vec::new();
    for number in 1.. {
        let mut chunk = Vec::with_capacity(PART_SIZE);
        (&mut file)
            .take(PART_SIZE as u64)
            .read_to_end(&mut chunk)
            .await
            .map_err(|e| format!("cannot read {}: {e}", from.display()))?;
        if chunk.is_empty() && number > 1 {
            break;
        }
        let last = chunk.len() < PART_SIZE;
        let part = client
            .upload_part()
            .bucket(bucket)
            .key(key)
            .upload_id(upload_id)
            .part_number(number)
            .body(ByteStream::from(chunk))
            .send()
            .await
            .map_err(|e| describe(&e))?;
        parts.push(
            CompletedPart::builder()
                .part_number(number)
                .set_e_tag(part.e_tag().map(str::to_string))
                .build(),
        );
        if last {
            break;
        }
    }
    Ok(parts)
}
