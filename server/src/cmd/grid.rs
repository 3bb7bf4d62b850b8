//! `wangge grid generate` and `wangge grid locate`.

use std::fs;
use std::io::{BufRead, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use wangge_sync_core::geo::{Crs, LonLat};
use wangge_sync_core::grid::generate::{GenerateOptions, generate};
use wangge_sync_core::grid::geojson::{read_districts, read_grids, write_grids};
use wangge_sync_core::grid::{DistrictCode, GridIndex, GridSet};

#[derive(Debug, Subcommand)]
pub enum GridCommand {
    /// Cut district boundaries (GeoJSON, GCJ-02) into ~100 m unit grids with a synthetic
    /// street / community / level-3 hierarchy, written as a GeoJSON FeatureCollection.
    Generate(GenerateArgs),
    /// Which unit grid contains a point (or each point of a CSV file of `lat,lon` lines).
    /// Exits with 1 when a single point is outside every grid.
    Locate(LocateArgs),
    /// Store unit grids (a file written by `generate`) in the server's database,
    /// replacing the ones there; the server loads them at its next start.
    Import(ImportArgs),
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Unit grids as written by `wangge grid generate`.
    #[arg(long)]
    grids: PathBuf,
    #[command(flatten)]
    database: super::database::Database,
}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// District boundaries: a FeatureCollection with `adcode` and `name` properties.
    #[arg(long)]
    districts: PathBuf,
    /// Only these districts (comma-separated adcodes); all when omitted.
    #[arg(long, value_delimiter = ',')]
    adcodes: Vec<String>,
    /// Side of a unit grid in metres.
    #[arg(long, default_value_t = 100.0)]
    cell_metres: f64,
    /// Output GeoJSON file (written to a temporary file, then renamed).
    #[arg(long)]
    out: PathBuf,
}

#[derive(Debug, Args)]
pub struct LocateArgs {
    /// Unit grids as written by `wangge grid generate`.
    #[arg(long)]
    grids: PathBuf,
    /// Latitude of one point.
    #[arg(
        long,
        allow_negative_numbers = true,
        requires = "lon",
        conflicts_with = "points"
    )]
    lat: Option<f64>,
    /// Longitude of one point.
    #[arg(long, allow_negative_numbers = true, requires = "lat")]
    lon: Option<f64>,
    /// A CSV file of `lat,lon` lines; prints `lat,lon,code` per line (empty code outside).
    #[arg(long, required_unless_present = "lat")]
    points: Option<PathBuf>,
    /// Datum of the input: wgs84 (GPS, the default), gcj02 (Chinese web maps) or bd09.
    #[arg(long, default_value = "wgs84")]
    crs: Crs,
}

pub fn run(command: GridCommand) -> anyhow::Result<ExitCode> {
    match command {
        GridCommand::Generate(args) => generate_command(args),
        GridCommand::Locate(args) => locate_command(args),
        GridCommand::Import(args) => {
            let bytes = fs::read(&args.grids)
                .with_context(|| format!("reading {}", args.grids.display()))?;
            let set = read_grids(&bytes)
                .with_context(|| format!("in grid file {}", args.grids.display()))?;
            super::database::import_grids(&set, &args.database)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn generate_command(args: GenerateArgs) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let set = cut_districts(&args.districts, &args.adcodes, args.cell_metres)?;
    write_atomically(&args.out, |out| Ok(write_grids(&set, out)?))?;
    let h = set.hierarchy();
    eprintln!(
        "{} unit grids in {} districts, {} streets, {} communities, {} level-3 grids → {} ({:.1} s)",
        set.grids().len(),
        h.districts.len(),
        h.streets.len(),
        h.communities.len(),
        h.level3.len(),
        args.out.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}

/// Cuts the districts of a boundary file (all, or those of `adcodes`) into unit grids,
/// with a progress bar on standard error.
pub fn cut_districts(
    districts: &Path,
    adcodes: &[String],
    cell_metres: f64,
) -> anyhow::Result<GridSet> {
    let bytes = fs::read(districts).with_context(|| format!("reading {}", districts.display()))?;
    cut_district_bytes(
        &bytes,
        &districts.display().to_string(),
        adcodes,
        cell_metres,
    )
}

/// [`cut_districts`] on a boundary file's bytes; `name` names it in errors.
pub fn cut_district_bytes(
    bytes: &[u8],
    name: &str,
    adcodes: &[String],
    cell_metres: f64,
) -> anyhow::Result<GridSet> {
    let boundaries = read_districts(bytes).with_context(|| format!("in districts file {name}"))?;
    let selected = adcodes
        .iter()
        .map(|a| a.trim().parse::<DistrictCode>())
        .collect::<Result<Vec<_>, _>>()
        .context("--adcodes")?;
    let bar = ProgressBar::new(0).with_style(
        ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} rows, {elapsed} (eta {eta})")
            .context("progress template")?
            .progress_chars("=> "),
    );
    bar.set_message("cutting");
    let options = GenerateOptions {
        cell_metres,
        ..GenerateOptions::default()
    };
    let set = generate(
        &boundaries,
        (!selected.is_empty()).then_some(selected.as_slice()),
        options,
        &mut |p| {
            bar.set_length(p.rows_total);
            bar.set_position(p.rows_done);
        },
    )?;
    bar.finish_and_clear();
    Ok(set)
}

/// Writes through a temporary file beside `path`, renamed into place only when complete,
/// so a crash or a full disk never leaves a half-written grid file under the real name.
fn write_atomically(
    path: &Path,
    write: impl FnOnce(&mut BufWriter<fs::File>) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".partial");
    let tmp = PathBuf::from(tmp);
    let file = fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    let mut out = BufWriter::new(file);
    write(&mut out)?;
    let file = out.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    fs::rename(&tmp, path).with_context(|| format!("renaming to {}", path.display()))?;
    Ok(())
}

fn load_index(path: &Path) -> anyhow::Result<GridIndex> {
    let bytes = fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let set = read_grids(&bytes).with_context(|| format!("in grid file {}", path.display()))?;
    Ok(GridIndex::build(set)?)
}

fn locate_command(args: LocateArgs) -> anyhow::Result<ExitCode> {
    let index = load_index(&args.grids)?;
    if let Some(points) = &args.points {
        locate_csv(&index, points, args.crs)?;
        return Ok(ExitCode::SUCCESS);
    }
    let (Some(lat), Some(lon)) = (args.lat, args.lon) else {
        bail!("give --lat and --lon, or --points");
    };
    let point = LonLat::new(lon, lat)?;
    match index.locate(point, args.crs) {
        Some(code) => {
            let description = index
                .describe(code)
                .context("located grid has no description")?;
            println!("{}", serde_json::to_string_pretty(&description)?);
            Ok(ExitCode::SUCCESS)
        }
        None => {
            eprintln!(
                "outside every grid: lat {lat}, lon {lon} ({:?}) is in none of the {} unit grids of {}",
                args.crs,
                index.len(),
                args.grids.display()
            );
            Ok(ExitCode::from(1))
        }
    }
}

fn locate_csv(index: &GridIndex, path: &Path, crs: Crs) -> anyhow::Result<()> {
    let file = fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    for (number, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line_number = number + 1;
        let line = line.with_context(|| format!("{}:{line_number}", path.display()))?;
        let text = line.trim();
        if line_number == 1 && text.eq_ignore_ascii_case("lat,lon") {
            writeln!(out, "lat,lon,code")?;
            continue;
        }
        let point = parse_point(text)
            .with_context(|| format!("{}:{line_number}: {text:?}", path.display()))?;
        let code = index
            .locate(point, crs)
            .map(|c| c.to_string())
            .unwrap_or_default();
        writeln!(out, "{text},{code}")?;
    }
    out.flush()?;
    Ok(())
}

/// One `lat,lon` line.
fn parse_point(text: &str) -> anyhow::Result<LonLat> {
    if text.is_empty() {
        bail!("empty line, expected lat,lon");
    }
    let Some((lat, lon)) = text.split_once(',') else {
        bail!("expected lat,lon");
    };
    let lat: f64 = lat.trim().parse().context("latitude is not a number")?;
    let lon: f64 = lon.trim().parse().context("longitude is not a number")?;
    Ok(LonLat::new(lon, lat)?)
}
