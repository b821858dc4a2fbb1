//! Running the built `glassbox` binary from the CLI tests.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::Value;

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A shipped model's directory.
pub fn model(name: &str) -> String {
    repo().join("public/models").join(name).display().to_string()
}

pub fn glassbox(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_glassbox")).args(args).current_dir(repo()).output().expect("the glassbox binary runs")
}

/// Runs a command that must succeed; returns its stdout.
pub fn ok(args: &[&str]) -> String {
    let out = glassbox(args);
    assert!(out.status.success(), "glassbox {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// Runs a command with `--json` that must succeed; returns what it printed.
pub fn json(args: &[&str]) -> Value {
    let mut args = args.to_vec();
    args.push("--json");
    let text = ok(&args);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("glassbox {args:?}: not JSON ({e}): {text}"))
}

/// Runs a command that must fail with `code`; returns its stderr.
pub fn fails(args: &[&str], code: i32) -> String {
    let out = glassbox(args);
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(code), "glassbox {args:?}: {stderr}");
    stderr
}
