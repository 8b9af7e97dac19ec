//! Helpers shared by the example binaries: the flags every one of them takes (`--runtime`,
//! `--log`), the listening address of the servers (`--host`, `--port`), `HOST:PORT` values,
//! and how a binary reports a failure.
//!
//! Each binary parses its command line with `clap` (`--help` prints the usage); a bad flag or
//! value exits with status 2 and clap's message, a failure at run time (a port in use, a
//! connect that fails, TLS files that do not load) with status 1 and one `error: ...` line on
//! stderr.

use std::fmt::Display;
use std::io::IsTerminal;

/// The flags every example takes.
#[derive(clap::Args, Debug, Clone)]
pub struct Common {
    /// The async runtime to run on.
    #[arg(long, value_enum, default_value_t = Rt::Tokio)]
    pub runtime: Rt,
    /// Print sansock's `tracing` events to stderr (connections opened and closed, handshakes,
    /// errors, backpressure): `--log` for `debug`, `--log=LEVEL` for another level or a
    /// `tracing` filter such as `sansock_core=trace`.
    #[arg(
        long,
        value_name = "LEVEL",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "debug",
        value_parser = log_filter,
    )]
    pub log: Option<String>,
}

/// Where a server listens.
#[derive(clap::Args, Debug, Clone)]
pub struct Listen {
    /// The address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// The port to listen on; 0 picks a free one (the first line printed, `listening on
    /// ADDR`, says which).
    #[arg(long, default_value_t = 0)]
    pub port: u16,
}

/// The runtimes an example can run on.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rt {
    /// tokio, multi-thread.
    Tokio,
    /// tokio, current-thread.
    TokioCurrentThread,
    /// smol.
    Smol,
    /// async-std.
    AsyncStd,
}

/// A `HOST:PORT` value (`--upstream`, `--connect`); an IPv6 host may be bracketed
/// (`[::1]:7000`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPort {
    /// The host name or address, without brackets.
    pub host: String,
    /// The port.
    pub port: u16,
}

impl Display for HostPort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// Parses `HOST:PORT` (the `value_parser` of `--upstream` and `--connect`).
pub fn host_port(value: &str) -> Result<HostPort, String> {
    let expected = "expected HOST:PORT, such as 127.0.0.1:7000";
    let (host, port) = value.rsplit_once(':').ok_or(expected)?;
    let host = match host.strip_prefix('[') {
        Some(inner) => inner.strip_suffix(']').ok_or(expected)?,
        None => host,
    };
    if host.is_empty() {
        return Err(format!("no host: {expected}"));
    }
    let port = port
        .parse()
        .map_err(|_| format!("{port:?} is not a port (0 to 65535): {expected}"))?;
    Ok(HostPort {
        host: host.to_owned(),
        port,
    })
}

/// Checks a `--log` level or filter (the `value_parser` of `--log`).
fn log_filter(value: &str) -> Result<String, String> {
    tracing_subscriber::EnvFilter::try_new(value)
        .map(|_| value.to_owned())
        .map_err(|e| e.to_string())
}

/// With `--log`, prints sansock's `tracing` events to stderr; in colour only when stderr is a
/// terminal, so a redirected log has no escape codes in it.
pub fn init_logging(common: &Common) {
    if let Some(level) = &common.log {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(level))
            .with_writer(std::io::stderr)
            .with_ansi(std::io::stderr().is_terminal())
            .init();
    }
}

/// Prints `error: MESSAGE` as one line on stderr and exits with status 1.
pub fn fail(message: impl Display) -> ! {
    let message = message.to_string();
    let one_line: Vec<&str> = message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    eprintln!("error: {}", one_line.join("; "));
    std::process::exit(1)
}

/// Runs `$main::<R>(args...)`, a generic `async fn $main<R: sansock_io::Runtime>`, on the
/// runtime that `$common` (the parsed [`Common`] flags) names, after setting up `--log`, and
/// returns its output.
///
/// ```no_run
/// use clap::Parser;
///
/// #[derive(Parser)]
/// struct Cli {
///     #[command(flatten)]
///     common: sansock_examples::Common,
///     #[command(flatten)]
///     listen: sansock_examples::Listen,
/// }
///
/// async fn serve<R: sansock_io::Runtime>(listen: sansock_examples::Listen) -> Result<(), String> {
///     # let _ = listen;
///     Ok(())
/// }
///
/// let cli = Cli::parse();
/// if let Err(e) = sansock_examples::run_on_selected_runtime!(&cli.common, serve(cli.listen)) {
///     sansock_examples::fail(e);
/// }
/// ```
#[macro_export]
macro_rules! run_on_selected_runtime {
    ($common:expr, $main:ident ( $($arg:expr),* $(,)? )) => {{
        let common: &$crate::Common = $common;
        $crate::init_logging(common);
        match common.runtime {
            $crate::Rt::Tokio => ::tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .unwrap_or_else(|e| $crate::fail(format_args!("tokio runtime: {e}")))
                .block_on($main::<::sansock_tokio::Tokio>($($arg),*)),
            $crate::Rt::TokioCurrentThread => ::tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap_or_else(|e| $crate::fail(format_args!("tokio runtime: {e}")))
                .block_on($main::<::sansock_tokio::Tokio>($($arg),*)),
            $crate::Rt::Smol => ::smol::block_on($main::<::sansock_smol::Smol>($($arg),*)),
            $crate::Rt::AsyncStd => {
                ::async_std::task::block_on($main::<::sansock_async_std::AsyncStd>($($arg),*))
            }
        }
    }};
}

/// The TLS flags of the example servers: a certificate and key from files, or a certificate
/// generated at start.
#[derive(clap::Args, Debug, Clone)]
#[command(group(clap::ArgGroup::new("tls").args(["tls_cert", "tls_self_signed"])))]
pub struct TlsFlags {
    /// Serve TLS with this certificate chain (PEM file, leaf first); needs --tls-key.
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    pub tls_cert: Option<std::path::PathBuf>,
    /// The private key (PEM file) of --tls-cert.
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    pub tls_key: Option<std::path::PathBuf>,
    /// Serve TLS with a certificate for localhost and 127.0.0.1 generated at start (kept in
    /// memory only). Clients must trust it as their CA: it is printed after the `listening on`
    /// line, or written to --ca-out.
    #[arg(long)]
    pub tls_self_signed: bool,
    /// With --tls-self-signed: write the certificate (PEM) to PATH instead of printing it. The
    /// file is yours: the server does not remove it.
    #[arg(long, value_name = "PATH", requires = "tls_self_signed")]
    pub ca_out: Option<std::path::PathBuf>,
}

/// A certificate generated for `--tls-self-signed` (PEM), and where it goes once the server
/// listens: to `--ca-out`, or printed.
pub struct SelfSigned {
    pem: String,
    ca_out: Option<std::path::PathBuf>,
}

impl TlsFlags {
    /// The server TLS options the flags ask for (`None`: plain TCP), and the generated
    /// certificate to [`publish`](SelfSigned::publish) once listening.
    pub fn server_options(
        self,
    ) -> Result<
        (
            Option<sansock_core::tls::ServerTlsOptions>,
            Option<SelfSigned>,
        ),
        String,
    > {
        use sansock_core::tls::{Pem, ServerTlsOptions};
        if let (Some(cert), Some(key)) = (self.tls_cert, self.tls_key) {
            return Ok((
                Some(ServerTlsOptions::new(Pem::file(key), Pem::file(cert))),
                None,
            ));
        }
        if !self.tls_self_signed {
            return Ok((None, None));
        }
        let (key, cert) = self_signed_certificate()
            .map_err(|e| format!("generating a self-signed certificate: {e}"))?;
        let published = SelfSigned {
            pem: cert.clone(),
            ca_out: self.ca_out,
        };
        Ok((Some(ServerTlsOptions::new(key, cert)), Some(published)))
    }
}

impl SelfSigned {
    /// Writes the certificate to `--ca-out`, or prints it. Call it once the server listens, so
    /// a server that failed to start leaves no file behind.
    pub fn publish(self) -> Result<(), String> {
        match self.ca_out {
            Some(path) => {
                std::fs::write(&path, self.pem)
                    .map_err(|e| format!("--ca-out {}: {e}", path.display()))?;
                println!(
                    "TLS: self-signed certificate (trust it as the CA) written to {}",
                    path.display()
                );
            }
            None => print!(
                "TLS: self-signed certificate (trust it as the CA; --ca-out PATH saves it to a file):\n{}",
                self.pem
            ),
        }
        Ok(())
    }
}

/// A key and a self-signed certificate for `localhost` and `127.0.0.1`, as PEM text.
pub fn self_signed_certificate() -> Result<(String, String), rcgen::Error> {
    let key = rcgen::KeyPair::generate()?;
    let params =
        rcgen::CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])?;
    let cert = params.self_signed(&key)?;
    Ok((key.serialize_pem(), cert.pem()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_parses_names_addresses_and_brackets() {
        let hp = |h: &str, p| HostPort {
            host: h.to_owned(),
            port: p,
        };
        assert_eq!(host_port("127.0.0.1:7000"), Ok(hp("127.0.0.1", 7000)));
        assert_eq!(host_port("localhost:0"), Ok(hp("localhost", 0)));
        assert_eq!(host_port("[::1]:80"), Ok(hp("::1", 80)));
        assert_eq!(host_port("[::1]:80").unwrap().to_string(), "[::1]:80");
        for bad in [
            "nonsense",
            ":7000",
            "host:",
            "host:65536",
            "host:abc",
            "[::1:80",
            "[]:80",
        ] {
            assert!(host_port(bad).is_err(), "{bad} was accepted");
        }
    }

    #[test]
    fn log_filter_rejects_garbage() {
        assert!(log_filter("debug").is_ok());
        assert!(log_filter("sansock_core=trace,warn").is_ok());
        assert!(log_filter("[[[").is_err());
    }
}
