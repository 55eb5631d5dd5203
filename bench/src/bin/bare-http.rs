//! The HTTP baseline: a bare hyper server on 127.0.0.1:<port> answering `/bytes/<n>` (any method)
//! with `200` and a JSON body of exactly n bytes, as fast as hyper can. scripts/bench points wrk
//! at it with the size of the answer countersign-local gives to the same request.

use std::convert::Infallible;
use std::net::SocketAddr;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// A JSON string of `size` bytes (at least 2: `""`).
fn body_of(size: usize) -> Bytes {
    let mut body = vec![b'x'; size.max(2)];
    body[0] = b'"';
    body[size.max(2) - 1] = b'"';
    Bytes::from(body)
}

async fn answer(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let size = request
        .uri()
        .path()
        .strip_prefix("/bytes/")
        .and_then(|n| n.parse::<usize>().ok());
    // Read the request body like a real handler has to.
    let _ = request.into_body().collect().await;
    let response = match size {
        Some(size) => Response::builder()
            .header("content-type", "application/json")
            .body(Full::new(body_of(size))),
        None => Response::builder()
            .status(404)
            .body(Full::new(Bytes::new())),
    };
    Ok(response.unwrap_or_else(|_| Response::new(Full::new(Bytes::new()))))
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let port: u16 = std::env::args()
        .nth(1)
        .and_then(|port| port.parse().ok())
        .unwrap_or(0);
    let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port))).await?;
    println!("http://{}", listener.local_addr()?);
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service_fn(answer))
                .await;
        });
    }
}
