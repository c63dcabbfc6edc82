use std::process::ExitCode;

use server::config::Config;

/// Enough for the file calls of many concurrent uploads, few enough not to crowd the cores.
const BLOCKING_THREADS: usize = 32;

fn main() -> ExitCode {
    // The local executor runs jobs as `server supervise` (the same program as the
    // `oscar-supervisor` binary): one binary to install in embedded mode.
    if std::env::args_os().nth(1).is_some_and(|a| a == "supervise") {
        return supervisor::main();
    }
    // The embedded store's file calls run on the blocking pool; tokio's default of up to 512
    // threads let a burst of uploads grow it to hundreds on two cores, and every request
    // waited behind them for seconds.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(BLOCKING_THREADS)
        .build();
    match runtime {
        Ok(runtime) => runtime.block_on(serve()),
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            ExitCode::from(1)
        }
    }
}

async fn serve() -> ExitCode {
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(err) => {
            eprintln!("error: invalid configuration: {err}");
            return ExitCode::from(2);
        }
    };
    server::telemetry::init(config.log_format);
    match run(config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // `{:#}` prints the chain: "DATABASE_URL: cannot connect to ...: <cause>".
            eprintln!("error: {err:#}");
            ExitCode::from(1)
        }
    }
}

async fn run(config: Config) -> anyhow::Result<()> {
    use axum::serve::{Listener, ListenerExt};
    let mut app = server::startup::build(&config).await?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| anyhow::anyhow!("OSCAR_LISTEN: cannot listen on {}: {e}", config.listen))?;
    // Pages are streamed in several writes: without this, Nagle's algorithm holds the later
    // ones until the browser's delayed ACK (40 ms on Linux).
    let listener = listener.tap_io(|tcp| {
        if let Err(err) = tcp.set_nodelay(true) {
            tracing::warn!(%err, "cannot set TCP_NODELAY");
        }
    });
    tracing::info!(
        url = %format!("http://{}", listener.local_addr()?),
        mode = %app.state.info.mode,
        storage = %app.state.info.storage_endpoint,
        database = %app.state.info.database,
        "dashboard listening"
    );
    // Peer addresses key the sign-in throttle.
    let service = app
        .router
        .clone()
        .into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, service)
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    tracing::info!("requests finished; stopping");
    app.shutdown().await;
    Ok(())
}

/// SIGINT or SIGTERM: stop accepting, let in-flight requests finish.
async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                tracing::warn!(%err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => {},
        _ = terminate => {},
    }
}
