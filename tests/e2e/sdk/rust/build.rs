//! Exposes the resolved versions of kube and k8s-openapi (from Cargo.lock)
//! to the program as `MCA_KUBE_VERSION` and `MCA_K8S_OPENAPI_VERSION`.

fn locked_version(lock: &str, package: &str) -> String {
    let wanted = format!("name = \"{package}\"");
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line.trim() == wanted {
            if let Some(version) = lines.next() {
                if let Some(v) = version.trim().strip_prefix("version = ") {
                    return v.trim_matches('"').to_string();
                }
            }
        }
    }
    "unknown".to_string()
}

fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR");
    let path = format!("{dir}/Cargo.lock");
    println!("cargo:rerun-if-changed={path}");
    let lock = std::fs::read_to_string(&path).unwrap_or_default();
    println!(
        "cargo:rustc-env=MCA_KUBE_VERSION={}",
        locked_version(&lock, "kube")
    );
    println!(
        "cargo:rustc-env=MCA_K8S_OPENAPI_VERSION={}",
        locked_version(&lock, "k8s-openapi")
    );
}
