//! `vigia-sandbox serve`: one JSON line with the addresses, and a clean stop when stdin closes.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};

fn serve(kind: &str) -> (std::process::Child, serde_json::Value) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_vigia-sandbox"))
        .args(["serve", kind])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    let info: serde_json::Value = serde_json::from_str(&line).unwrap();
    (child, info)
}

#[test]
fn serve_postgres_prints_its_socket_and_cleans_up_when_stdin_closes() {
    let (mut child, info) = serve("postgres");
    assert_eq!(info["kind"], "postgres");
    let host = info["host"].as_str().unwrap().to_owned();
    let psql = std::path::Path::new(info["bin_dir"].as_str().unwrap()).join("psql");
    let out = Command::new(psql)
        .args([
            "-X",
            "-A",
            "-t",
            "-h",
            &host,
            "-U",
            "postgres",
            "-c",
            "SELECT 6*7",
        ])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "42");
    drop(child.stdin.take());
    assert!(child.wait().unwrap().success());
    assert!(!std::path::Path::new(&host).exists());
}

#[test]
fn serve_s3_prints_an_endpoint_that_answers_http() {
    let (mut child, info) = serve("s3");
    assert_eq!(info["bucket"], "vigia");
    let endpoint = info["endpoint"].as_str().unwrap();
    let addr = endpoint.strip_prefix("http://").unwrap();
    let mut socket = std::net::TcpStream::connect(addr).unwrap();
    write!(
        socket,
        "GET /vigia HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut reply = String::new();
    socket.read_to_string(&mut reply).unwrap();
    // Unsigned requests are refused: the server checks SigV4 credentials.
    assert!(reply.starts_with("HTTP/1.1 403"), "{reply}");
    drop(child.stdin.take());
    assert!(child.wait().unwrap().success());
}
