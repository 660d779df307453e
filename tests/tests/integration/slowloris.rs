//! Slow clients against the real listener: hundreds of sockets that trickle a request head
//! and never finish it do not keep `/healthz` from answering, and each is closed once its
//! header-read time is up.

use std::time::{Duration, Instant};

use instanode_tests::{HostOptions, TestHost};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const SLOW_CLIENTS: usize = 800;

#[tokio::test]
async fn half_sent_requests_neither_starve_the_api_nor_outlive_the_header_timeout() {
    let host = TestHost::start(HostOptions {
        providers: vec![],
        extra: "[http]\nheader_read_timeout_ms = 2000\n".into(),
        ..HostOptions::default()
    })
    .await;
    let address = host.url.trim_start_matches("http://").to_string();
    let mut slow = Vec::with_capacity(SLOW_CLIENTS);
    for _ in 0..SLOW_CLIENTS {
        let mut socket = TcpStream::connect(&address).await.expect("connect");
        socket
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: slow\r\nX-Pad: ")
            .await
            .unwrap();
        slow.push(socket);
    }

    // The API answers while every slow socket is open and trickling a byte at a time.
    let mut worst = Duration::ZERO;
    for _ in 0..10 {
        for socket in &mut slow {
            let _ = socket.write_all(b"a").await;
        }
        let started = Instant::now();
        let reply = host.get("/healthz").await;
        assert_eq!(reply.status.as_u16(), 200, "{}", reply.body);
        worst = worst.max(started.elapsed());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!("/healthz with {SLOW_CLIENTS} slow clients: worst {worst:?}");
    assert!(worst < Duration::from_secs(1), "/healthz took {worst:?}");

    // Past the header-read time, the server has closed them (a 408, or just EOF).
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let checks = slow.iter_mut().map(|socket| async move {
        let mut buffer = [0u8; 512];
        tokio::time::timeout(Duration::from_millis(500), async {
            loop {
                match socket.read(&mut buffer).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
            }
        })
        .await
        .is_ok()
    });
    let closed = futures::future::join_all(checks)
        .await
        .into_iter()
        .filter(|ended| *ended)
        .count();
    assert_eq!(closed, SLOW_CLIENTS, "slow sockets the server kept open");
}
