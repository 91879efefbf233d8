//! A CRI (Kubernetes Container Runtime Interface v1) client over a unix socket.
