//! A broker's copy of the cluster metadata, kept current by fetching the committed metadata
//! log from the controllers after its own offset (or the whole image when too far behind).

use super::MetadataUpdate;
use super::client::{self, ClientError};
use crate::image::{Change, MetadataImage};

/// What one poll did to the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FollowerUpdate {
    /// Records were applied, with these changes, in order.
    Changes(Vec<Change>),
    /// The image was replaced wholesale: act on the new image, not on changes.
    Replaced,
}

/// The metadata as a broker follows it.
#[derive(Debug, Clone, Default)]
pub struct MetadataFollower {
    image: MetadataImage,
}

impl MetadataFollower {
    /// Starts from an empty image (offset 0).
    pub fn new() -> Self {
        Self::default()
    }

    /// The image as of the last poll.
    pub fn image(&self) -> &MetadataImage {
        &self.image
    }

    /// Fetches and applies what the controllers committed since the last poll, waiting up to
    /// `wait` for something new.
    pub async fn poll(
        &mut self,
        controllers: &[String],
        wait: std::time::Duration,
    ) -> Result<FollowerUpdate, ClientError> {
        let update = client::fetch_metadata(controllers, self.image.offset, wait).await?;
        Ok(self.apply(update))
    }

    /// Applies an update (exposed for tests and for brokers that receive updates otherwise).
    pub fn apply(&mut self, update: MetadataUpdate) -> FollowerUpdate {
        apply_update(&mut self.image, update)
    }
}

/// Applies an update fetched from the controllers to `image`.
pub fn apply_update(image: &mut MetadataImage, update: MetadataUpdate) -> FollowerUpdate {
    match update {
        MetadataUpdate::Image(new) => {
            if new.offset <= image.offset {
                return FollowerUpdate::Changes(Vec::new());
            }
            *image = *new;
            FollowerUpdate::Replaced
        }
        MetadataUpdate::Records(entries) => {
            let mut changes = Vec::new();
            for (index, records) in entries {
                if index <= image.offset {
                    continue;
                }
                for record in &records {
                    // Controllers only send records that applied; the same apply here
                    // cannot fail, and would change nothing if it did.
                    if let Ok(change) = image.apply(index, record) {
                        changes.push(change);
                    }
                }
                image.offset = index;
            }
            FollowerUpdate::Changes(changes)
        }
    }
}
