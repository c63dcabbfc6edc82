//! A loopback TCP proxy the drills can cut: while cut, nothing listens on its port (connections
//! are refused) and the connections it carried are closed, as when a store goes away.

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

pub struct Proxy {
    pub port: u16,
    open: watch::Sender<bool>,
}

impl Proxy {
    /// Forwards `127.0.0.1:<port>` to `127.0.0.1:<target>`.
    pub async fn start(target: u16) -> anyhow::Result<Self> {
        let port = crate::platform::free_port();
        let (open, mut opened) = watch::channel(true);
        let listener = TcpListener::bind(("127.0.0.1", port)).await?;
        tokio::spawn(async move {
            let mut listener = Some(listener);
            loop {
                let accepted = async {
                    match &listener {
                        Some(l) => l.accept().await.ok(),
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    Some((socket, _)) = accepted => {
                        tokio::spawn(carry(socket, target, opened.clone()));
                    }
                    changed = opened.changed() => {
                        if changed.is_err() {
                            return;
                        }
                        listener = if *opened.borrow() {
                            TcpListener::bind(("127.0.0.1", port)).await.ok()
                        } else {
                            None
                        };
                    }
                }
            }
        });
        Ok(Self { port, open })
    }

    pub fn cut(&self) {
        let _ = self.open.send(false);
    }

    pub fn restore(&self) {
        let _ = self.open.send(true);
    }
}

async fn carry(mut socket: TcpStream, target: u16, mut opened: watch::Receiver<bool>) {
    let Ok(mut upstream) = TcpStream::connect(("127.0.0.1", target)).await else {
        return;
    };
    tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut socket, &mut upstream) => {}
        _ = opened.wait_for(|open| !open) => {}
    }
}
