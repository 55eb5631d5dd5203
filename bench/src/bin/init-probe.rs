//! Times the init of Lambda bootstraps against a local Runtime API: for each run, starts the
//! binary with `AWS_LAMBDA_RUNTIME_API` pointing here and measures from just before the spawn to
//! the arrival of its first `GET /2018-06-01/runtime/invocation/next` (the end of init), reads its
//! peak RSS (`VmHWM`) at that moment, then kills it. Every other request is answered 200 `{}`.
//!
//! `init-probe <repeats> <name>=<path> ...`: the binaries are run interleaved (one of each per
//! round) so that a noisy neighbour hits all of them alike. One JSON line per run on stdout:
//! `{"name":..,"round":..,"init_us":..,"peak_rss_kib":..}`. The environment is passed on.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::process::Command;

const NEXT: &str = "GET /2018-06-01/runtime/invocation/next";

fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Waits for the first request of the next-invocation kind; answers others (none expected).
async fn wait_for_next(listener: &TcpListener) -> std::io::Result<Instant> {
    loop {
        let (mut stream, _) = listener.accept().await?;
        let mut head = Vec::new();
        let mut buffer = [0u8; 4096];
        loop {
            let read = stream.read(&mut buffer).await?;
            if read == 0 {
                break;
            }
            head.extend_from_slice(&buffer[..read]);
            if head.starts_with(NEXT.as_bytes()) {
                return Ok(Instant::now());
            }
            if head.windows(4).any(|window| window == b"\r\n\r\n") {
                let _ = stream
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}")
                    .await;
                break;
            }
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let repeats: usize = args
        .next()
        .ok_or("usage: init-probe <repeats> name=path...")?
        .parse()?;
    let binaries: Vec<(String, String)> = args
        .map(|arg| {
            let (name, path) = arg.split_once('=').ok_or("name=path")?;
            Ok((name.to_owned(), path.to_owned()))
        })
        .collect::<Result<_, &str>>()?;
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let api = listener.local_addr()?.to_string();
    for round in 1..=repeats {
        for (name, path) in &binaries {
            let started = Instant::now();
            let mut child = Command::new(path)
                .env("AWS_LAMBDA_RUNTIME_API", &api)
                .env("AWS_LAMBDA_FUNCTION_NAME", name)
                .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
                .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
                .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/bench")
                .env("AWS_LAMBDA_LOG_STREAM_NAME", "bench")
                .stdout(std::process::Stdio::null())
                .kill_on_drop(true)
                .spawn()?;
            let pid = child.id().ok_or("no pid")?;
            let outcome = tokio::select! {
                arrived = wait_for_next(&listener) => Ok(arrived?),
                status = child.wait() => Err(format!("{name} exited before asking for an invocation: {}", status?)),
                _ = tokio::time::sleep(Duration::from_secs(30)) => Err(format!("{name}: no request within 30 s")),
            };
            let arrived = outcome?;
            let rss = peak_rss_kib(pid).unwrap_or(0);
            child.kill().await?;
            println!(
                "{}",
                serde_json::json!({
                    "name": name,
                    "round": round,
                    "init_us": arrived.duration_since(started).as_micros() as u64,
                    "peak_rss_kib": rss,
                })
            );
        }
    }
    Ok(())
}
