//! What the engine reads and writes: training checkpoints ([`checkpoint`]), model directories
//! ([`model_dir`]), their shared tensor file format ([`tensor_file`]) under PyTorch's names
//! ([`torch_layout`]), and the atomic write every file goes through ([`atomic_file`]).

pub mod checkpoint;
pub mod model_dir;
pub mod tensor_file;
pub mod torch_layout;
