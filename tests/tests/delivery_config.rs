//! An invalid sink configuration stops `sensor run` at start, naming the
//! entry and key, before anything is loaded.

use std::process::Command;

use sensor_tests::{scratch_dir, sensor_bin};

/// Runs `sensor run --config` with `sinks`; returns stderr of the failed start.
fn refused(sinks: &str) -> String {
    let dir = scratch_dir("delivery-config");
    let cfg = dir.join("sensor.toml");
    std::fs::write(
        &cfg,
        format!("[agent]\nstate_dir = \"{}\"\n{sinks}", dir.display()),
    )
    .expect("write config");
    let out = Command::new(sensor_bin())
        .args(["run", "--config"])
        .arg(&cfg)
        .output()
        .expect("run sensor");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !out.status.success(),
        "the sensor started with an invalid sink:\n{sinks}\n{stderr}"
    );
    stderr
}

#[test]
fn a_bad_address_is_named() {
    let e = refused(
        "[[sinks]]\nkind = \"stdout\"\n[[sinks]]\nkind = \"syslog\"\naddress = \"tcp://127.0.0.1\"\n",
    );
    assert!(
        e.contains("sinks[1].address") && e.contains("no port"),
        "{e}"
    );
    let e = refused("[[sinks]]\nkind = \"syslog\"\naddress = \"smtp://127.0.0.1:25\"\n");
    assert!(
        e.contains("sinks[0].address") && e.contains("unknown scheme"),
        "{e}"
    );
}

#[test]
fn an_unknown_format_is_named() {
    let e = refused(
        "[[sinks]]\nkind = \"syslog\"\naddress = \"udp://127.0.0.1:514\"\nformat = \"rfc9999\"\n",
    );
    assert!(
        e.contains("sinks[0]") && e.contains("rfc9999") && e.contains("rfc5424"),
        "{e}"
    );
}

#[test]
fn an_unreadable_certificate_is_named() {
    let e = refused(
        "[[sinks]]\nkind = \"syslog\"\naddress = \"tls://127.0.0.1:6514\"\ntls = { ca_file = \"/nonexistent/ca.pem\" }\n",
    );
    assert!(
        e.contains("sinks[0].tls.ca_file") && e.contains("/nonexistent/ca.pem"),
        "{e}"
    );
}

#[test]
fn a_file_that_is_not_a_certificate_is_named() {
    let dir = scratch_dir("delivery-config-pem");
    let bogus = dir.join("ca.pem");
    std::fs::write(&bogus, "not a certificate\n").expect("write");
    let e = refused(&format!(
        "[[sinks]]\nkind = \"syslog\"\naddress = \"tls://127.0.0.1:6514\"\ntls = {{ ca_file = \"{}\" }}\n",
        bogus.display()
    ));
    assert!(
        e.contains("sinks[0]") && e.contains("no PEM certificate"),
        "{e}"
    );
}
