//! `skiff`: the one user-facing binary. `skiff server` runs the control plane, `skiff agent` the
//! node agent, `skiff up` both on one machine. This crate only composes the components; each
//! lives in its own crate under `control/` or `node/`.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;

/// The apiserver allocates and frees many small JSON values per request from every worker
/// thread; glibc's allocator spent a fifth of the CPU (and lock waits) on that under load.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use clap::{Args, Parser, Subcommand};

mod agent;
use skiff_store::{EmbeddedConfig, EmbeddedStore, EtcdConfig, EtcdStore, Store};

#[derive(Parser)]
#[command(
    name = "skiff",
    version,
    about = "A Kubernetes-compatible cluster with an eBPF dataplane"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the control plane (today: the store and the apiserver).
    Server(StoreArgs),
    /// Run the node agent (today: the eBPF service proxy and the pod network).
    Agent(Box<agent::AgentArgs>),
    /// Run the control plane and a node agent on this machine.
    Up(StoreArgs),
}

#[derive(Args)]
struct StoreArgs {
    /// Data directory of the embedded store (the default backend).
    #[arg(long, default_value = "/var/lib/skiff")]
    data_dir: PathBuf,
    /// Use etcd at these client URLs instead of the embedded store.
    #[arg(long, value_delimiter = ',')]
    etcd_endpoints: Vec<String>,
    /// Key prefix in etcd.
    #[arg(long, default_value = "/skiff")]
    etcd_prefix: String,
    /// Address the apiserver listens on (loopback only unless told otherwise).
    #[arg(long, default_value = "127.0.0.1:6443")]
    bind: std::net::SocketAddr,
    /// Where to write the admin kubeconfig (default: <data-dir>/admin.kubeconfig).
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
}

impl StoreArgs {
    async fn open(&self) -> anyhow::Result<Arc<dyn Store>> {
        if self.etcd_endpoints.is_empty() {
            let dir = self.data_dir.join("store");
            let store = EmbeddedStore::open(EmbeddedConfig::new(&dir))
                .with_context(|| format!("opening the embedded store in {}", dir.display()))?;
            tracing::info!(dir = %dir.display(), "embedded store open");
            return Ok(Arc::new(store));
        }
        let mut config = EtcdConfig::new("", &self.etcd_prefix);
        config.endpoints = self.etcd_endpoints.clone();
        let store = EtcdStore::connect(config)
            .await
            .context("connecting to etcd")?;
        tracing::info!(endpoints = ?self.etcd_endpoints, prefix = %self.etcd_prefix, "etcd store connected");
        Ok(Arc::new(store))
    }
}

/// Components that do not exist yet, so `skiff up` says plainly what a user cannot do today.
const NOT_YET: &[&str] = &[
    "scheduler",
    "controllers",
    "node agent's kubelet, CNI and DNS",
];

/// Resolves when the process gets SIGINT or SIGTERM.
async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing a SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

/// Runs the control plane; with `with_agent`, also this machine's node agent (`skiff up`).
async fn serve(args: StoreArgs, with_agent: bool) -> anyhow::Result<()> {
    let store = args.open().await?;
    let listener = tokio::net::TcpListener::bind(args.bind)
        .await
        .with_context(|| format!("listening on {}", args.bind))?;
    let address = listener.local_addr()?;
    let server = skiff_apiserver::Server::new(store.clone(), address);
    server
        .bootstrap()
        .await
        .map_err(|e| anyhow::anyhow!(e.message))?;
    let kubeconfig = match &args.kubeconfig {
        Some(path) => path.clone(),
        None => args.data_dir.join("admin.kubeconfig"),
    };
    let kubeconfig = std::path::absolute(&kubeconfig)?;
    skiff_apiserver::kubeconfig::write_admin(&kubeconfig, &format!("http://{address}"))
        .with_context(|| format!("writing {}", kubeconfig.display()))?;
    tracing::info!(%address, kubeconfig = %kubeconfig.display(), "apiserver listening");
    for missing in NOT_YET {
        tracing::warn!(component = missing, "not implemented yet");
    }
    println!("export KUBECONFIG={}", kubeconfig.display());
    let (stop_agent, agent_stopped) = tokio::sync::oneshot::channel::<()>();
    if with_agent {
        let args = agent::AgentArgs::local(kubeconfig.clone());
        tokio::spawn(async move {
            let stopped = async {
                let _ = agent_stopped.await;
            };
            if let Err(err) = agent::run(args, stopped).await {
                // The API stays useful without the dataplane (e.g. when not root).
                tracing::error!(error = format!("{err:#}"), "the node agent stopped");
            }
        });
    }
    skiff_apiserver::serve(server, listener, shutdown_signal()).await?;
    let _ = stop_agent.send(());
    tracing::info!("stopped");
    // Dropping the store finishes in-flight writes and releases its directory.
    drop(store);
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    match Cli::parse().command {
        Command::Server(args) => serve(args, false).await,
        Command::Up(args) => serve(args, true).await,
        Command::Agent(args) => agent::run(*args, shutdown_signal()).await,
    }
}
