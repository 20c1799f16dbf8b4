pub mod abi {}
