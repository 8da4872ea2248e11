//! `multinet bench …` (see BENCHMARKS.md).

use clap::{Args, Subcommand};

use crate::bench::{self, IngestArgs, load::LoadArgs, soak::SoakArgs};

/// `multinet bench …`
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Control-plane ingest: many agent connections reporting at a fixed rate.
    Ingest(IngestFlags),
    /// A long soak, time-compressed: the run's matrix fed hours of simulated results; memory
    /// and report size per simulated hour.
    Soak(SoakFlags),
    /// The load side of `ingest` (started by it).
    #[command(hide = true)]
    Load(LoadFlags),
}

/// Arguments of `multinet bench ingest`.
#[derive(Debug, Args)]
pub struct IngestFlags {
    /// Agent connections.
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u32).range(1..))]
    pub agents: u32,
    /// Results per second per agent (sent as one batch per second).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub rate: u32,
    /// Duration of the reporting phase, seconds (connections are cut and made again on
    /// purpose from 8 s).
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..))]
    pub seconds: u64,
    /// With the live metrics on (`--metrics-addr`'s updates at every result, and the
    /// exposition encoded at every sample, as a scrape would): their cost.
    #[arg(long)]
    pub metrics: bool,
}

/// Arguments of `multinet bench soak`.
#[derive(Debug, Args)]
pub struct SoakFlags {
    /// Simulated clients.
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u32).range(1..))]
    pub agents: u32,
    /// Nodes they are spread over.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..))]
    pub nodes: u32,
    /// Simulated hours.
    #[arg(long, default_value_t = 24, value_parser = clap::value_parser!(u64).range(2..))]
    pub hours: u64,
    /// Simulated probe interval, a Go duration.
    #[arg(long, default_value = "10s", value_parser = parse_go_duration)]
    pub interval: std::time::Duration,
    /// Probes lost at random, per mille.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(0..=1000))]
    pub loss_per_mille: u32,
    /// With the live metrics on, each sample encoding them as a scrape would.
    #[arg(long)]
    pub metrics: bool,
}

fn parse_go_duration(text: &str) -> Result<std::time::Duration, String> {
    multinet_proto::config::GoDuration::parse(text)
        .map(|d| d.as_std())
        .map_err(|e| e.to_string())
}

/// Arguments of `multinet bench load` (given by `bench ingest`).
#[derive(Debug, Args)]
pub struct LoadFlags {
    /// Coordinator address.
    #[arg(long)]
    pub addr: std::net::SocketAddr,
    /// Run id.
    #[arg(long)]
    pub run_id: String,
    /// Run CA.
    #[arg(long)]
    pub ca: std::path::PathBuf,
    /// Client certificate.
    #[arg(long)]
    pub cert: std::path::PathBuf,
    /// Its key.
    #[arg(long)]
    pub key: std::path::PathBuf,
    /// Connections.
    #[arg(long)]
    pub agents: u32,
    /// Results per second per connection.
    #[arg(long)]
    pub rate: u32,
    /// Seconds of reporting.
    #[arg(long)]
    pub seconds: u64,
}

/// Runs a `bench` subcommand; the exit code.
pub fn run(command: BenchCommand) -> u8 {
    match command {
        BenchCommand::Ingest(f) => bench::ingest(&IngestArgs {
            agents: f.agents,
            rate: f.rate,
            seconds: f.seconds,
            metrics: f.metrics,
        }),
        BenchCommand::Soak(f) => bench::soak::soak(&SoakArgs {
            agents: f.agents,
            nodes: f.nodes,
            hours: f.hours,
            interval: f.interval,
            loss_per_mille: f.loss_per_mille,
            metrics: f.metrics,
        }),
        BenchCommand::Load(f) => bench::load::load(&LoadArgs {
            addr: f.addr,
            run_id: f.run_id,
            ca: f.ca,
            cert: f.cert,
            key: f.key,
            agents: f.agents,
            rate: f.rate,
            seconds: f.seconds,
        }),
    }
}
