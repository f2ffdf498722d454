//! Tries to open a network connection: its component imports wasi:sockets,
//! which the host refuses at upload.
use switchboard_plugin::router::*;

struct Net;

impl Router for Net {
    fn route(_input: Input) -> Result<Decision, String> {
        match std::net::TcpStream::connect("10.0.0.1:80") {
            Ok(_) => Ok(Decision::no_reply("connected")),
            Err(e) => Err(e.to_string()),
        }
    }
}

switchboard_plugin::export_router!(Net);
