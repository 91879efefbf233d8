//! A CRI (Kubernetes Container Runtime Interface v1) client over a unix socket.
//!
//! [`v1`] holds the generated `runtime.v1` messages (only the part skiff uses, see
//! `proto/api.proto`); [`Cri`] wraps the runtime and image services with typed calls whose
//! errors name the call that failed.
#![deny(missing_docs)]

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use tokio::net::UnixStream;
use tonic::transport::{Channel, Endpoint, Uri};

/// The generated CRI v1 messages and client stubs (package `runtime.v1`).
#[allow(missing_docs, clippy::all)]
pub mod v1 {
    tonic::include_proto!("runtime.v1");
}

use v1::image_service_client::ImageServiceClient;
use v1::runtime_service_client::RuntimeServiceClient;

/// The CRI API version skiff speaks (sent in `VersionRequest`).
pub const API_VERSION: &str = "v1";

/// A failed CRI call or connection.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The socket could not be reached.
    #[error("connect to the CRI socket {path}: {source}")]
    Connect {
        /// The socket path.
        path: PathBuf,
        /// Why.
        source: tonic::transport::Error,
    },
    /// The runtime answered a call with an error status.
    #[error("CRI {call}: {status}")]
    Call {
        /// The RPC's name, e.g. `RunPodSandbox`.
        call: &'static str,
        /// The runtime's answer.
        status: tonic::Status,
    },
}

impl Error {
    /// The gRPC status of a failed call (`None` for connection errors).
    pub fn status(&self) -> Option<&tonic::Status> {
        match self {
            Error::Call { status, .. } => Some(status),
            Error::Connect { .. } => None,
        }
    }
}

/// The result of a CRI call.
pub type Result<T> = std::result::Result<T, Error>;

/// A connection to a CRI runtime (containerd). Cheap to clone; clones share the connection.
#[derive(Clone)]
pub struct Cri {
    runtime: RuntimeServiceClient<Channel>,
    images: ImageServiceClient<Channel>,
}

/// Teardown calls are idempotent for the caller (the kubelet contract); containerd 1.6 answers
/// NotFound for an already removed sandbox or container, which means the work is done.
fn gone_is_done(result: Result<()>) -> Result<()> {
    match result {
        Err(Error::Call { status, .. }) if status.code() == tonic::Code::NotFound => Ok(()),
        other => other,
    }
}

/// Wraps a tonic result with the call's name.
fn call<T>(
    name: &'static str,
    result: std::result::Result<tonic::Response<T>, tonic::Status>,
) -> Result<T> {
    result
        .map(tonic::Response::into_inner)
        .map_err(|status| Error::Call { call: name, status })
}

impl Cri {
    /// Connects to the runtime's unix socket (e.g. `/run/containerd/containerd.sock`).
    pub async fn connect(path: impl AsRef<Path>) -> Result<Cri> {
        let path = path.as_ref().to_owned();
        let socket = path.clone();
        // The URI is required by the HTTP/2 layer but never resolved: every connection the
        // channel makes goes through the connector, which dials the socket.
        let channel = Endpoint::from_static("http://localhost")
            .connect_timeout(Duration::from_secs(5))
            .connect_with_connector(tower::service_fn(move |_: Uri| {
                let socket = socket.clone();
                async move { Ok::<_, io::Error>(TokioIo::new(UnixStream::connect(socket).await?)) }
            }))
            .await
            .map_err(|source| Error::Connect { path, source })?;
        Ok(Cri {
            runtime: RuntimeServiceClient::new(channel.clone()),
            images: ImageServiceClient::new(channel),
        })
    }

    /// The runtime's name and version, and the CRI API version it serves.
    pub async fn version(&self) -> Result<v1::VersionResponse> {
        let request = v1::VersionRequest {
            version: API_VERSION.into(),
        };
        call("Version", self.runtime.clone().version(request).await)
    }

    /// The runtime's conditions (`RuntimeReady`, `NetworkReady`); `info` only when `verbose`.
    pub async fn status(&self, verbose: bool) -> Result<v1::StatusResponse> {
        call(
            "Status",
            self.runtime
                .clone()
                .status(v1::StatusRequest { verbose })
                .await,
        )
    }

    /// Creates and starts a pod sandbox (its network namespace and pause container); returns
    /// its id. `runtime_handler` empty selects the default.
    pub async fn run_pod_sandbox(
        &self,
        config: &v1::PodSandboxConfig,
        runtime_handler: &str,
    ) -> Result<String> {
        let request = v1::RunPodSandboxRequest {
            config: Some(config.clone()),
            runtime_handler: runtime_handler.into(),
        };
        let response = call(
            "RunPodSandbox",
            self.runtime.clone().run_pod_sandbox(request).await,
        )?;
        Ok(response.pod_sandbox_id)
    }

    /// Stops a sandbox's containers and releases its network (idempotent: an unknown id is
    /// not an error).
    pub async fn stop_pod_sandbox(&self, id: &str) -> Result<()> {
        let request = v1::StopPodSandboxRequest {
            pod_sandbox_id: id.into(),
        };
        gone_is_done(
            call(
                "StopPodSandbox",
                self.runtime.clone().stop_pod_sandbox(request).await,
            )
            .map(drop),
        )
    }

    /// Removes a sandbox and its containers (idempotent).
    pub async fn remove_pod_sandbox(&self, id: &str) -> Result<()> {
        let request = v1::RemovePodSandboxRequest {
            pod_sandbox_id: id.into(),
        };
        gone_is_done(
            call(
                "RemovePodSandbox",
                self.runtime.clone().remove_pod_sandbox(request).await,
            )
            .map(drop),
        )
    }

    /// A sandbox's status (state, network IPs); `info` only when `verbose`.
    pub async fn pod_sandbox_status(
        &self,
        id: &str,
        verbose: bool,
    ) -> Result<v1::PodSandboxStatusResponse> {
        let request = v1::PodSandboxStatusRequest {
            pod_sandbox_id: id.into(),
            verbose,
        };
        call(
            "PodSandboxStatus",
            self.runtime.clone().pod_sandbox_status(request).await,
        )
    }

    /// The sandboxes matching `filter` (all when `None`).
    pub async fn list_pod_sandbox(
        &self,
        filter: Option<v1::PodSandboxFilter>,
    ) -> Result<Vec<v1::PodSandbox>> {
        let request = v1::ListPodSandboxRequest { filter };
        let response = call(
            "ListPodSandbox",
            self.runtime.clone().list_pod_sandbox(request).await,
        )?;
        Ok(response.items)
    }

    /// Creates a container in a sandbox; `sandbox_config` is the one the sandbox was run with.
    /// Returns the container's id.
    pub async fn create_container(
        &self,
        pod_sandbox_id: &str,
        config: &v1::ContainerConfig,
        sandbox_config: &v1::PodSandboxConfig,
    ) -> Result<String> {
        let request = v1::CreateContainerRequest {
            pod_sandbox_id: pod_sandbox_id.into(),
            config: Some(config.clone()),
            sandbox_config: Some(sandbox_config.clone()),
        };
        let response = call(
            "CreateContainer",
            self.runtime.clone().create_container(request).await,
        )?;
        Ok(response.container_id)
    }

    /// Starts a created container.
    pub async fn start_container(&self, id: &str) -> Result<()> {
        let request = v1::StartContainerRequest {
            container_id: id.into(),
        };
        call(
            "StartContainer",
            self.runtime.clone().start_container(request).await,
        )?;
        Ok(())
    }

    /// Stops a container: SIGTERM, then SIGKILL after `grace` (whole seconds; zero kills at
    /// once). Idempotent.
    pub async fn stop_container(&self, id: &str, grace: Duration) -> Result<()> {
        let request = v1::StopContainerRequest {
            container_id: id.into(),
            timeout: grace.as_secs() as i64,
        };
        gone_is_done(
            call(
                "StopContainer",
                self.runtime.clone().stop_container(request).await,
            )
            .map(drop),
        )
    }

    /// Removes a container, killing it if it runs (idempotent).
    pub async fn remove_container(&self, id: &str) -> Result<()> {
        let request = v1::RemoveContainerRequest {
            container_id: id.into(),
        };
        gone_is_done(
            call(
                "RemoveContainer",
                self.runtime.clone().remove_container(request).await,
            )
            .map(drop),
        )
    }

    /// The containers matching `filter` (all when `None`).
    pub async fn list_containers(
        &self,
        filter: Option<v1::ContainerFilter>,
    ) -> Result<Vec<v1::Container>> {
        let request = v1::ListContainersRequest { filter };
        let response = call(
            "ListContainers",
            self.runtime.clone().list_containers(request).await,
        )?;
        Ok(response.containers)
    }

    /// A container's status (state, exit code, reason); `info` only when `verbose`.
    pub async fn container_status(
        &self,
        id: &str,
        verbose: bool,
    ) -> Result<v1::ContainerStatusResponse> {
        let request = v1::ContainerStatusRequest {
            container_id: id.into(),
            verbose,
        };
        call(
            "ContainerStatus",
            self.runtime.clone().container_status(request).await,
        )
    }

    /// Runs `cmd` in a running container and waits for it (at most `timeout`, whole seconds;
    /// zero waits forever); returns its output and exit code.
    pub async fn exec_sync(
        &self,
        id: &str,
        cmd: &[&str],
        timeout: Duration,
    ) -> Result<v1::ExecSyncResponse> {
        let request = v1::ExecSyncRequest {
            container_id: id.into(),
            cmd: cmd.iter().map(|s| s.to_string()).collect(),
            timeout: timeout.as_secs() as i64,
        };
        call("ExecSync", self.runtime.clone().exec_sync(request).await)
    }

    /// The streaming-server URL for an exec session in container `id`.
    pub async fn exec(&self, request: v1::ExecRequest) -> Result<String> {
        call("Exec", self.runtime.clone().exec(request).await).map(|r| r.url)
    }

    /// The streaming-server URL for attaching to container `id`'s main process.
    pub async fn attach(&self, request: v1::AttachRequest) -> Result<String> {
        call("Attach", self.runtime.clone().attach(request).await).map(|r| r.url)
    }

    /// The streaming-server URL for forwarding ports into sandbox `id`.
    pub async fn port_forward(&self, request: v1::PortForwardRequest) -> Result<String> {
        call(
            "PortForward",
            self.runtime.clone().port_forward(request).await,
        )
        .map(|r| r.url)
    }

    /// The images matching `filter` (all when `None`).
    pub async fn list_images(&self, filter: Option<v1::ImageFilter>) -> Result<Vec<v1::Image>> {
        let request = v1::ListImagesRequest { filter };
        let response = call("ListImages", self.images.clone().list_images(request).await)?;
        Ok(response.images)
    }

    /// The image named `image` (a reference or id), or `None` when it is not present.
    pub async fn image_status(&self, image: &str) -> Result<Option<v1::Image>> {
        let request = v1::ImageStatusRequest {
            image: Some(image_spec(image)),
            verbose: false,
        };
        let response = call(
            "ImageStatus",
            self.images.clone().image_status(request).await,
        )?;
        Ok(response.image)
    }

    /// Pulls `image` from its registry; returns the image reference the runtime resolved.
    pub async fn pull_image(
        &self,
        image: &str,
        auth: Option<v1::AuthConfig>,
        sandbox_config: Option<&v1::PodSandboxConfig>,
    ) -> Result<String> {
        let request = v1::PullImageRequest {
            image: Some(image_spec(image)),
            auth,
            sandbox_config: sandbox_config.cloned(),
        };
        let response = call("PullImage", self.images.clone().pull_image(request).await)?;
        Ok(response.image_ref)
    }

    /// Pull policy IfNotPresent: the image's id when present, else the result of a pull.
    /// (containerd contacts the registry on PullImage even for a present image, so the
    /// status check comes first.)
    pub async fn ensure_image(&self, image: &str) -> Result<String> {
        match self.image_status(image).await? {
            Some(found) => Ok(found.id),
            None => self.pull_image(image, None, None).await,
        }
    }

    /// Removes an image (idempotent).
    pub async fn remove_image(&self, image: &str) -> Result<()> {
        let request = v1::RemoveImageRequest {
            image: Some(image_spec(image)),
        };
        call(
            "RemoveImage",
            self.images.clone().remove_image(request).await,
        )?;
        Ok(())
    }
}

/// An `ImageSpec` naming `image`.
pub fn image_spec(image: &str) -> v1::ImageSpec {
    v1::ImageSpec {
        image: image.into(),
        ..Default::default()
    }
}

/// The condition `kind` (`RuntimeReady`, `NetworkReady`) of a `Status` answer, if reported.
pub fn condition<'a>(
    status: &'a v1::StatusResponse,
    kind: &str,
) -> Option<&'a v1::RuntimeCondition> {
    status
        .status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.r#type == kind)
}
