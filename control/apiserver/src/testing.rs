//! The apiserver in the calling process over an embedded store: for tests of its clients (the
//! agent, the kubelet), which talk to it over real HTTP like any client.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::{Server, kubeconfig, serve};

/// A running control plane; [`ControlPlane::stop`] ends it.
pub struct ControlPlane {
    /// The loopback listener's URL (`http://127.0.0.1:port`), for the test's own clients.
    pub url: String,
    /// An admin kubeconfig for agents: it points at the agents' listener when one was given,
    /// else at the loopback one.
    pub kubeconfig: PathBuf,
    stops: Vec<tokio::sync::oneshot::Sender<()>>,
    serving: Vec<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl ControlPlane {
    /// Starts it with its store under `dir`, on a loopback port, and also on `for_agents` when
    /// given (e.g. a socket bound inside a test's network namespace: a socket belongs to the
    /// namespace it was created in, whoever accepts on it).
    pub async fn start(dir: &Path, for_agents: Option<TcpListener>) -> ControlPlane {
        let store = Arc::new(
            skiff_store::EmbeddedStore::open(skiff_store::EmbeddedConfig::new(dir.join("store")))
                .expect("opening the test store"),
        );
        let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        let address = listener.local_addr().expect("a bound address");
        let server = Server::new(store, address);
        server
            .bootstrap()
            .await
            .expect("bootstrapping the apiserver");
        let mut listeners = vec![listener];
        listeners.extend(for_agents);
        let agents_address = listeners
            .last()
            .and_then(|l| l.local_addr().ok())
            .expect("a bound address");
        let (mut stops, mut serving) = (Vec::new(), Vec::new());
        for listener in listeners {
            listener
                .set_nonblocking(true)
                .expect("a non-blocking socket");
            let listener = tokio::net::TcpListener::from_std(listener).expect("a tokio listener");
            let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
            stops.push(stop);
            serving.push(tokio::spawn(serve(server.clone(), listener, async {
                let _ = stopped.await;
            })));
        }
        let kubeconfig = dir.join("admin.kubeconfig");
        kubeconfig::write_admin(&kubeconfig, &format!("http://{agents_address}"))
            .expect("writing the kubeconfig");
        ControlPlane {
            url: format!("http://{address}"),
            kubeconfig,
            stops,
            serving,
        }
    }

    /// Stops serving and waits for the servers to end.
    pub async fn stop(self) {
        for stop in self.stops {
            let _ = stop.send(());
        }
        for serving in self.serving {
            let _ = serving.await;
        }
    }
}
