//! Writes the seed inputs of every decoding target (real records encoded by the SDK
//! from the example events) to `corpus/TARGET/seed-N`. `scripts/fuzz seeds` runs it
//! and minimizes the corpora after.

use std::fs;
use std::path::Path;

fn main() -> std::io::Result<()> {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let targets: [(&str, Vec<Vec<u8>>); 3] = [
        (
            "cloudevents_headers",
            event_bus_fuzz::seeds::cloudevents_headers(),
        ),
        ("avro_decode", event_bus_fuzz::seeds::avro_decode()),
        ("avro_resolve", event_bus_fuzz::seeds::avro_resolve()),
    ];
    for (target, seeds) in targets {
        let dir = corpus.join(target);
        fs::create_dir_all(&dir)?;
        for (i, seed) in seeds.iter().enumerate() {
            fs::write(dir.join(format!("seed-{i}")), seed)?;
        }
        println!("{target}: {} seeds in {}", seeds.len(), dir.display());
    }
    Ok(())
}
