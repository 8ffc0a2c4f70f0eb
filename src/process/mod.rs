//! Process creation: the channel between runtime and init, the parent side of create, the
//! container init itself.
pub mod channel;
pub mod init;
pub mod join;
pub mod parent;
