//! The `switchboard` command line. Thin: parse, then call the library.

mod plugin;
mod scaffold;
mod webhook;

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

use crate::clock::SystemClock;
use crate::config::Config;
use crate::ingest::signature;

#[derive(Parser)]
#[command(name = "switchboard", version, about = "Multi-tenant WhatsApp CRM automation with sandboxed Wasm plugins")]
pub struct Cli {
    /// Configuration file (TOML). Default: ./switchboard.toml if present.
    #[arg(long, global = true, env = "SWITCHBOARD_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (webhook, API, pipeline, sender).
    Serve,
    /// Post or sign WhatsApp webhook payloads, as Meta would.
    #[command(subcommand)]
    Webhook(WebhookCommand),
    /// Develop and ship plugins: init, run, check, deploy, logs.
    #[command(subcommand)]
    Plugin(plugin::PluginCommand),
}

#[derive(Subcommand)]
enum WebhookCommand {
    /// Sign FILE with the app secret and POST it to the webhook.
    Send {
        file: PathBuf,
        /// Webhook URL; default: `/webhooks/whatsapp` at the configured
        /// `server.listen` address.
        #[arg(long)]
        url: Option<String>,
        /// App secret; default: the demo tenant's, from <data_dir>/demo.env.
        #[arg(long, env = "SWITCHBOARD_DEMO_APP_SECRET", hide_env_values = true)]
        secret: Option<String>,
        /// Send timestamps as written instead of setting them to now.
        #[arg(long)]
        keep_timestamps: bool,
        /// Give every message a fresh wamid (otherwise a second send is a
        /// redelivery, and is de-duplicated).
        #[arg(long)]
        new_ids: bool,
    },
    /// Print the X-Hub-Signature-256 header for FILE.
    Sign {
        file: PathBuf,
        #[arg(long, env = "SWITCHBOARD_DEMO_APP_SECRET", hide_env_values = true)]
        secret: String,
    },
}

pub fn main() -> Result<()> {
    let cli = Cli::parse();
    let config = Config::load(cli.config.as_deref())?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    match cli.command {
        Command::Serve => runtime.block_on(serve(config)),
        Command::Webhook(WebhookCommand::Send { file, url, secret, keep_timestamps, new_ids }) => {
            let secret = match secret {
                Some(s) => s,
                None => webhook::demo_secret(&config.server.data_dir)?,
            };
            let url = url.unwrap_or_else(|| format!("{}/webhooks/whatsapp", server_url(&config)));
            runtime.block_on(webhook::send(&file, &url, &secret, keep_timestamps, new_ids))
        }
        Command::Plugin(command) => runtime.block_on(plugin::run(command, &config)),
        Command::Webhook(WebhookCommand::Sign { file, secret }) => {
            let body = std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            println!("X-Hub-Signature-256: {}", signature::sign(secret.as_bytes(), &body));
            Ok(())
        }
    }
}

/// Where a command finds the server when it is given no `--url`: the
/// address the configuration has it listen on, so a server moved to
/// another port is still found. An unspecified address (`0.0.0.0`, `::`)
/// is reached on loopback; a host name is used as written.
fn server_url(config: &Config) -> String {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
    match config.server.listen.parse::<SocketAddr>() {
        Ok(mut addr) => {
            if addr.ip().is_unspecified() {
                let loopback: IpAddr =
                    if addr.is_ipv4() { Ipv4Addr::LOCALHOST.into() } else { Ipv6Addr::LOCALHOST.into() };
                addr.set_ip(loopback);
            }
            format!("http://{addr}")
        }
        Err(_) => format!("http://{}", config.server.listen),
    }
}

fn init_tracing(config: &Config) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&config.log.filter));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = if config.log.format == crate::config::LogFormat::Json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

async fn serve(config: Config) -> Result<()> {
    init_tracing(&config);
    let shutdown = tokio_util::sync::CancellationToken::new();
    let token = shutdown.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutting down: finishing in-flight work");
        token.cancel();
    });
    let banner = |server: &crate::server::Server, starts: u32| {
        if starts == 0 {
            print_banner(server, &config);
        }
    };
    crate::server::supervise::run(config.clone(), Arc::new(SystemClock), shutdown, banner).await?;
    Ok(())
}

fn print_banner(server: &crate::server::Server, config: &Config) {
    println!("Switchboard {} listening on http://{}", env!("CARGO_PKG_VERSION"), server.addr);
    println!("  data: {}", config.server.data_dir.display());
    if server.resumed_events > 0 {
        println!("  resuming {} events acknowledged before the last stop", server.resumed_events);
    }
    if let Some(demo) = &server.demo {
        println!("  demo tenant \"demo\" (WhatsApp phone_number_id {})", demo.phone_number_id);
        println!("    app secret: {}", demo.app_secret);
        println!("    API key:    {}", demo.api_key);
        println!("    saved in {} — load with: . {}", demo.env_file.display(), demo.env_file.display());
        println!("  try: switchboard webhook send examples/payloads/text.json");
    }
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_server_is_found_where_the_configuration_has_it_listen() {
        let at = |listen: &str| {
            let mut config = Config::default();
            config.server.listen = listen.into();
            server_url(&config)
        };
        assert_eq!(at("127.0.0.1:9123"), "http://127.0.0.1:9123");
        assert_eq!(at("0.0.0.0:8081"), "http://127.0.0.1:8081");
        assert_eq!(at("[::]:8082"), "http://[::1]:8082");
        assert_eq!(at("switchboard.internal:80"), "http://switchboard.internal:80");
    }
}
