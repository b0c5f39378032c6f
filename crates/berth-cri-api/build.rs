//! Generates the CRI v1 messages and the RuntimeService/ImageService client and server
//! from `proto/api.proto` (Kubernetes' `k8s.io/cri-api/pkg/apis/runtime/v1/api.proto`).
//! The proto is compiled by `protox`, a Rust protobuf compiler, so no `protoc` is needed.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/api.proto");
    let descriptors = protox::compile(["api.proto"], ["proto"])?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        // An RPC Berth does not implement answers UNIMPLEMENTED, never a fake success.
        .generate_default_stubs(true)
        .compile_fds(descriptors)?;
    Ok(())
}
