//! The layering the workspace promises: `fluxgate-core` decides, checks and renders with no
//! async runtime, no HTTP or TLS stack and no Kubernetes client, so none of them can creep into
//! the decision. Cargo enforces it for code (the core cannot name a crate it does not depend
//! on); this test keeps the dependency list itself honest.

use std::process::Command;

#[test]
fn the_core_depends_on_no_runtime_server_tls_or_kube_client() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let output = Command::new(cargo)
        .args(["tree", "--locked", "--offline", "-p", "fluxgate-core"])
        .args(["--edges", "normal", "--prefix", "none", "--format", "{p}"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo tree runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let tree = String::from_utf8(output.stdout).unwrap();
    let crates: Vec<&str> = tree
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .collect();
    assert!(crates.contains(&"kube-core"), "{crates:?}");
    for forbidden in [
        "tokio",
        "axum",
        "hyper",
        "hyper-util",
        "rustls",
        "tokio-rustls",
        "tower",
        "kube-client",
        "kube-runtime",
        "prometheus-client",
        "tracing",
        "clap",
        // chrono's "clock" feature (the system's zone, read from the file system): a crate
        // that turns it on, such as `rrule`, would give the core a clock.
        "iana-time-zone",
    ] {
        assert!(
            !crates.contains(&forbidden),
            "fluxgate-core depends on {forbidden}: move the code that needs it to the fluxgate package"
        );
    }
}

/// The server and the cluster shell know nothing of each other (issue "A house ready for the
/// next rooms"): both call into `metrics`, and `serve` wires them together. A `use` or a path
/// naming the other module is what this looks for, in code and doc links alike.
#[test]
fn the_server_and_the_cluster_shell_do_not_import_each_other() {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    for (module, other) in [("server", "cluster"), ("cluster", "server")] {
        let mut files: Vec<_> = std::fs::read_dir(src.join(module))
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .collect();
        files.sort();
        assert!(!files.is_empty());
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            for needle in [format!("crate::{other}"), format!("super::{other}")] {
                assert!(
                    !text.contains(&needle),
                    "{} names {needle}: go through crate::metrics, or wire it in cli/serve.rs",
                    file.display()
                );
            }
        }
    }
}
