//! The skiff-cni plugin (CNI 1.0/1.1).
