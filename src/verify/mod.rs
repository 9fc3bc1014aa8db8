//! Reading shards without loading them: the streaming `.ckpt` walker and safetensors headers.
pub mod ckpt;
pub mod digest;
pub mod pool;
pub mod proto;
pub mod safetensors;
pub mod safetensors_crc;
pub mod tree;
pub mod verdict;
