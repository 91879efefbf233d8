//! The container runtime fixture every test and benchmark that runs pods starts from:
//! containerd with the caller's config, the images asked for, a CRI client, and CRI ready.

use std::io;
use std::path::Path;
use std::time::{Duration, Instant};

use skiff_cri::Cri;

use crate::images::Image;
use crate::{Containerd, ContainerdConfig, wait_ready};

/// How long [`ContainerRuntime::start`] waits for CRI's NetworkReady.
const NETWORK_READY: Duration = Duration::from_secs(20);

/// What [`ContainerRuntime::start`] waits for once containerd's CRI answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ready {
    /// RuntimeReady and NetworkReady: containerd has loaded the CNI config (which is there
    /// before it starts).
    Network,
    /// Nothing more: the CNI config comes later (written by the agent under test); wait for it
    /// with [`wait_ready`].
    Runtime,
}

/// A running containerd and a CRI client of it; the client drops first, then the
/// [`Containerd`] guard removes the pods and everything they left.
pub struct ContainerRuntime {
    /// Connected to [`Containerd::socket`].
    pub cri: Cri,
    /// The running containerd.
    pub containerd: Containerd,
}

impl ContainerRuntime {
    /// What most pods run on: containerd with `config`, the pause and busybox images
    /// (built or reused from `cache_dir`), a CRI client, the runtime and network ready.
    ///
    /// containerd dies with the calling thread (see [`Containerd::start`]): call it from the
    /// test's own thread.
    pub async fn start(
        config: &ContainerdConfig,
        cache_dir: &Path,
    ) -> io::Result<ContainerRuntime> {
        let images = [Image::Pause, Image::Busybox];
        ContainerRuntime::start_with(config, cache_dir, &images, Ready::Network).await
    }

    /// Starts containerd with `config`, imports `images` (built or reused from `cache_dir`),
    /// connects a CRI client and waits for `ready`.
    pub async fn start_with(
        config: &ContainerdConfig,
        cache_dir: &Path,
        images: &[Image],
        ready: Ready,
    ) -> io::Result<ContainerRuntime> {
        let started = Instant::now();
        let containerd = Containerd::start(config)?;
        eprintln!("containerd up (CRI answers) in {:?}", started.elapsed());
        let started = Instant::now();
        containerd.import_images(cache_dir, images)?;
        eprintln!(
            "images {images:?} built/imported in {:?}",
            started.elapsed()
        );
        let cri = Cri::connect(containerd.socket())
            .await
            .map_err(io::Error::other)?;
        if ready == Ready::Network {
            wait_ready(&cri, NETWORK_READY).await?;
        }
        Ok(ContainerRuntime { cri, containerd })
    }
}
