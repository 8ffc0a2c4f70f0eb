//! The two hook systems, kept apart: OCI hooks (config.json `hooks`, run by the runtime at fixed
//! lifecycle points) and Kubernetes-style lifecycle hooks (PostStart, PreStop).
pub mod handlers;
pub mod journal;
pub mod lifecycle;
pub mod oci;
pub mod sequence;
