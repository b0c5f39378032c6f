//! Layer compressions: which one a media type or a stream's magic bytes name, and a
//! streaming decoder for each. Gzip goes through flate2 (zlib-rs backend), zstd through
//! the `zstd` crate (libzstd: decodes about twice as fast as the pure-Rust `ruzstd`).

use std::io::{self, BufRead, Read};

use crate::ImageError;

/// Docker schema2 layer (gzip).
pub const MEDIA_DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
/// Docker schema2 foreign (nondistributable) layer (gzip).
pub const MEDIA_DOCKER_FOREIGN_LAYER_GZIP: &str =
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
/// Uncompressed layer in a Docker schema2 manifest (rare, but registries accept it).
pub const MEDIA_DOCKER_LAYER_TAR: &str = "application/vnd.docker.image.rootfs.diff.tar";
pub const MEDIA_OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
pub const MEDIA_OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const MEDIA_OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
pub const MEDIA_OCI_NONDIST_TAR: &str = "application/vnd.oci.image.layer.nondistributable.v1.tar";
pub const MEDIA_OCI_NONDIST_GZIP: &str =
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip";
pub const MEDIA_OCI_NONDIST_ZSTD: &str =
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd";

/// How a layer blob is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    /// The compression a layer media type names (Docker schema2 and OCI, foreign and
    /// nondistributable ones included; media type parameters are ignored). Anything else
    /// (encrypted layers, unknown types) is refused.
    pub fn from_media_type(mt: &str) -> Result<Compression, ImageError> {
        let base = mt.split(';').next().unwrap_or("").trim();
        match base {
            MEDIA_DOCKER_LAYER_GZIP
            | MEDIA_DOCKER_FOREIGN_LAYER_GZIP
            | MEDIA_OCI_LAYER_GZIP
            | MEDIA_OCI_NONDIST_GZIP => Ok(Compression::Gzip),
            MEDIA_OCI_LAYER_ZSTD | MEDIA_OCI_NONDIST_ZSTD => Ok(Compression::Zstd),
            MEDIA_OCI_LAYER_TAR | MEDIA_OCI_NONDIST_TAR | MEDIA_DOCKER_LAYER_TAR => {
                Ok(Compression::None)
            }
            _ => Err(ImageError::InvalidArgument(format!(
                "unsupported layer media type {mt:?}: berth reads gzip, zstd and uncompressed tar layers (Docker schema2 and OCI)"
            ))),
        }
    }

    /// The compression a stream's first bytes show: gzip or zstd magic, else none.
    pub fn detect(head: &[u8]) -> Compression {
        if head.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else {
            Compression::None
        }
    }

    /// A reader of the decompressed stream. Gzip reads every member, zstd every frame,
    /// so the whole input is consumed.
    pub fn decoder<'a, R: BufRead + 'a>(self, input: R) -> io::Result<Box<dyn Read + 'a>> {
        Ok(match self {
            Compression::None => Box::new(input),
            Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(input)),
            Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(input)?),
        })
    }
}

/// The media type a Docker schema2 manifest gives a blob of this type: OCI gzip and tar
/// types become their Docker spellings (same bytes); zstd keeps the OCI type (Docker's
/// schema2 has none of its own).
pub(crate) fn docker_media_type(mt: &str) -> String {
    match Compression::from_media_type(mt) {
        Ok(Compression::Gzip) if mt.contains("foreign") || mt.contains("nondistributable") => {
            MEDIA_DOCKER_FOREIGN_LAYER_GZIP.to_string()
        }
        Ok(Compression::Gzip) => MEDIA_DOCKER_LAYER_GZIP.to_string(),
        Ok(Compression::None) => MEDIA_DOCKER_LAYER_TAR.to_string(),
        _ => mt.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn media_types_map_to_compressions() {
        use Compression::*;
        for (mt, c) in [
            (MEDIA_DOCKER_LAYER_GZIP, Gzip),
            (MEDIA_DOCKER_FOREIGN_LAYER_GZIP, Gzip),
            (MEDIA_OCI_LAYER_GZIP, Gzip),
            (MEDIA_OCI_NONDIST_GZIP, Gzip),
            (MEDIA_OCI_LAYER_ZSTD, Zstd),
            (MEDIA_OCI_NONDIST_ZSTD, Zstd),
            (MEDIA_OCI_LAYER_TAR, None),
            (MEDIA_OCI_NONDIST_TAR, None),
            (MEDIA_DOCKER_LAYER_TAR, None),
        ] {
            assert_eq!(Compression::from_media_type(mt).unwrap(), c, "{mt}");
        }
        let e =
            Compression::from_media_type("application/vnd.oci.image.layer.v1.tar+gzip+encrypted")
                .unwrap_err();
        assert!(matches!(e, ImageError::InvalidArgument(_)));
        assert!(
            e.to_string().contains("unsupported layer media type"),
            "{e}"
        );
        assert!(Compression::from_media_type("application/json").is_err());
    }

    #[test]
    fn decoders_round_trip_and_detect() {
        let data = b"hello layer".repeat(1000);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&data).unwrap();
        let gz = gz.finish().unwrap();
        let zs = zstd::encode_all(&data[..], 3).unwrap();
        for (bytes, c) in [
            (gz, Compression::Gzip),
            (zs, Compression::Zstd),
            (data.clone(), Compression::None),
        ] {
            assert_eq!(Compression::detect(&bytes), c);
            let mut out = Vec::new();
            c.decoder(&bytes[..])
                .unwrap()
                .read_to_end(&mut out)
                .unwrap();
            assert_eq!(out, data);
        }
    }

    #[test]
    fn docker_spellings() {
        assert_eq!(
            docker_media_type(MEDIA_OCI_LAYER_GZIP),
            MEDIA_DOCKER_LAYER_GZIP
        );
        assert_eq!(
            docker_media_type(MEDIA_OCI_LAYER_TAR),
            MEDIA_DOCKER_LAYER_TAR
        );
        assert_eq!(
            docker_media_type(MEDIA_OCI_NONDIST_GZIP),
            MEDIA_DOCKER_FOREIGN_LAYER_GZIP
        );
        assert_eq!(
            docker_media_type(MEDIA_OCI_LAYER_ZSTD),
            MEDIA_OCI_LAYER_ZSTD
        );
    }
}
