//! The S3-compatible object store of embedded mode: s3s-fs over a directory, served on a TCP
//! listener. The rest of the platform reaches it only through aws-sdk-s3, exactly as it reaches
//! an external MinIO, so embedded and production mode differ only in configuration.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use hyper_util::server::graceful::GracefulShutdown;
use s3s::auth::SimpleAuth;
use s3s::service::S3ServiceBuilder;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How long in-flight S3 requests may take to finish once shutdown starts.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// A running embedded S3 server. Dropping it without [`EmbeddedS3::shutdown`] aborts it.
pub struct EmbeddedS3 {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl EmbeddedS3 {
    /// Serves the objects under `root` (created when missing) on `listener`, accepting only
    /// requests signed with the given root credentials.
    pub fn start(
        listener: TcpListener,
        root: &Path,
        access_key: &str,
        secret_key: &str,
    ) -> anyhow::Result<Self> {
        std::fs::create_dir_all(root)
            .with_context(|| format!("cannot create S3 data directory {}", root.display()))?;
        let fs = s3s_fs::FileSystem::new(root)
            // s3s_fs::Error does not implement std::error::Error.
            .map_err(|e| {
                anyhow::anyhow!("cannot open S3 data directory {}: {e:?}", root.display())
            })?;
        let mut builder = S3ServiceBuilder::new(fs);
        builder.set_auth(SimpleAuth::from_single(access_key, secret_key));
        let service = builder.build();

        let addr = listener.local_addr()?;
        let (stop, mut stopped) = watch::channel(false);
        let task = tokio::spawn(async move {
            let http = ConnBuilder::new(TokioExecutor::new());
            let graceful = GracefulShutdown::new();
            loop {
                let socket = tokio::select! {
                    accepted = listener.accept() => match accepted {
                        Ok((socket, _)) => socket,
                        Err(err) => {
                            tracing::warn!(%err, "embedded S3: accept failed");
                            continue;
                        }
                    },
                    _ = stopped.changed() => break,
                };
                let conn = http.serve_connection(TokioIo::new(socket), service.clone());
                let conn = graceful.watch(conn.into_owned());
                tokio::spawn(async move {
                    if let Err(err) = conn.await {
                        tracing::debug!(%err, "embedded S3: connection ended with an error");
                    }
                });
            }
            if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
                .await
                .is_err()
            {
                tracing::warn!("embedded S3: connections still open after the grace period");
            }
        });
        tracing::info!(%addr, root = %root.display(), "embedded S3 server listening");
        Ok(Self {
            addr,
            stop,
            task: Some(task),
        })
    }

    /// The address the server listens on (useful when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The endpoint URL clients use (path-style addressing).
    pub fn endpoint_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting connections and waits for in-flight requests to finish.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for EmbeddedS3 {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
