// serde writes a Vec<u8> as a sequence of numbers unless told to write bytes.
use event_bus_core::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Event)]
#[event(type = "org.example.learning.certificate.file.uploaded.v1", topic = "certificates")]
struct CertificateUploaded {
    pdf: Vec<u8>,
}

fn main() {}
