//! Reading shards without loading them: the streaming `.ckpt` walker and safetensors headers.
pub mod ckpt;
pub(crate) mod digest;
pub mod pool;
pub(crate) mod proto;
pub mod safetensors;
pub mod safetensors_crc;
pub(crate) mod tree;
pub mod verdict;

pub use digest::sha256_file;
pub use tree::{priorities, TreeOptions};
