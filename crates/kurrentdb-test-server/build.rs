//! Generates the gRPC server side of KurrentDB's client protocol from the
//! `.proto` files that ship inside the `eventstore` client crate, so that the
//! server and the client it is tested with can never disagree on the wire
//! format, and no copy of the protocol lives in this repository.

use std::path::PathBuf;
use std::process::Command;

const PROTOS: [&str; 2] = ["streams.proto", "serverfeatures.proto"];

fn main() {
    let protos = eventstore_protos_dir();
    let protoc = protoc_bin_vendored::protoc_bin_path()
        .expect("protoc-bin-vendored has no protoc for this host");
    let well_known =
        protoc_bin_vendored::include_path().expect("protoc-bin-vendored has no include path");

    // tonic-build reads PROTOC; setting it here keeps the build free of any
    // protoc installed on the machine.
    std::env::set_var("PROTOC", protoc);

    tonic_build::configure()
        .build_client(false)
        .build_server(true)
        // Event payloads are served many times over; `Bytes` makes each copy a
        // reference count instead of a memcpy.
        .bytes(["."])
        .compile_protos(
            &PROTOS.map(|p| protos.join(p)),
            &[protos.clone(), well_known],
        )
        .expect("compiling the eventstore protos");

    for proto in std::fs::read_dir(&protos).expect("reading the protos directory") {
        let path = proto.expect("listing the protos directory").path();
        println!("cargo:rerun-if-changed={}", path.display());
    }
    println!("cargo:rerun-if-changed=build.rs");
}

/// The `protos/` directory of the `eventstore` package this crate depends on,
/// as Cargo resolved it (registry, vendored or patched alike).
fn eventstore_protos_dir() -> PathBuf {
    let cargo = std::env::var("CARGO").expect("CARGO is set for build scripts");
    let manifest =
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR is set"))
            .join("Cargo.toml");
    let output = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--manifest-path"])
        .arg(&manifest)
        .output()
        .expect("running cargo metadata");
    assert!(
        output.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("cargo metadata prints JSON");
    let package = metadata["packages"]
        .as_array()
        .expect("cargo metadata lists packages")
        .iter()
        .find(|p| p["name"] == "eventstore" && p["version"] == "4.0.0")
        .expect("the eventstore 4.0.0 package is in the dependency graph");
    let manifest_path = PathBuf::from(
        package["manifest_path"]
            .as_str()
            .expect("manifest_path is a string"),
    );
    manifest_path
        .parent()
        .expect("a manifest has a parent directory")
        .join("protos")
}
