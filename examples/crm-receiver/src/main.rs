//! `cargo run -p switchboard-crm-receiver -- 127.0.0.1:9000 <endpoint secret>`
//! then point a Switchboard sync endpoint at `http://127.0.0.1:9000/events`
//! and look at `http://127.0.0.1:9000/objects`.

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let listen = args.next().unwrap_or_else(|| "127.0.0.1:9000".into());
    let secret = args.next().unwrap_or_default();
    if secret.is_empty() {
        eprintln!("usage: switchboard-crm-receiver <listen address> <endpoint secret>");
        std::process::exit(2);
    }
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    println!("CRM receiver on http://{}/events", listener.local_addr()?);
    axum::serve(listener, switchboard_crm_receiver::app(switchboard_crm_receiver::Receiver::new(&secret))).await
}
