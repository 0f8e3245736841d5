//! One API's images, held compactly: each image encoded as protobuf, all of
//! them back to back in one buffer, with an id index over that buffer.
//!
//! A million compute images take about 205 MB encoded, but about 1.4 GB as
//! prost structs (a heap allocation per string, a B-tree node per label map, an
//! `Arc` and a boxed key per entry). Kept encoded, the whole list costs its
//! protobuf size plus about 40 bytes per image. A lookup hands out the stored
//! bytes (a reference-counted slice: what the gRPC face sends as it is) or
//! decodes the one image it returns.

use std::fmt;
use std::hash::BuildHasher;
use std::marker::PhantomData;

use bytes::Bytes;
use hashbrown::HashTable;
use hashbrown::hash_table::Entry;
use prost::{DecodeError, Message};

/// Images of one type, in catalog order, found by id in constant time.
pub struct ImageList<T> {
    /// Every image encoded as protobuf, back to back.
    encoded: Bytes,
    /// Where image `i` ends in `encoded` (it starts where image `i - 1` ends).
    encoded_ends: Vec<usize>,
    /// Every id, back to back, and where id `i` ends.
    ids: String,
    id_ends: Vec<usize>,
    /// Positions in the list, hashed by id.
    index: HashTable<u32>,
    hasher: foldhash::fast::RandomState,
    _images: PhantomData<fn() -> T>,
}

fn span(ends: &[usize], position: usize) -> std::ops::Range<usize> {
    let start = if position == 0 { 0 } else { ends[position - 1] };
    start..ends[position]
}

fn id_at<'a>(ids: &'a str, id_ends: &[usize], position: usize) -> &'a str {
    &ids[span(id_ends, position)]
}

impl<T: Message + Default> ImageList<T> {
    /// Builds the list from runs of encoded images, in order, refusing an id
    /// seen before: the error is the position of the repeat and of the first use.
    pub(crate) fn from_chunks(chunks: Vec<EncodedImages>) -> Result<Self, Duplicate> {
        // Sized once: no reallocation (and no doubled peak) while appending.
        let total = |size: fn(&EncodedImages) -> usize| chunks.iter().map(size).sum::<usize>();
        let mut list = Builder {
            encoded: Vec::with_capacity(total(|c| c.encoded.len())),
            encoded_ends: Vec::with_capacity(total(EncodedImages::len)),
            ids: String::with_capacity(total(|c| c.ids.len())),
            id_ends: Vec::with_capacity(total(EncodedImages::len)),
            index: HashTable::with_capacity(total(EncodedImages::len)),
            hasher: foldhash::fast::RandomState::default(),
        };
        // Each run is dropped once copied, so at most one is held twice.
        for chunk in chunks {
            list.append(&chunk)?;
        }
        Ok(Self {
            encoded: Bytes::from(list.encoded),
            encoded_ends: list.encoded_ends,
            ids: list.ids,
            id_ends: list.id_ends,
            index: list.index,
            hasher: list.hasher,
            _images: PhantomData,
        })
    }

    /// Builds the list from decoded images, in order (what a database hands
    /// back), refusing an id seen before as [`ImageList::from_chunks`] does.
    pub fn from_images(
        images: impl IntoIterator<Item = T>,
        id_of: impl Fn(&T) -> &str,
    ) -> Result<Self, Duplicate> {
        let mut chunk = EncodedImages::default();
        for image in images {
            chunk.push(id_of(&image), &image);
        }
        Self::from_chunks(vec![chunk])
    }

    pub fn len(&self) -> usize {
        self.id_ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.id_ends.is_empty()
    }

    /// Where the image with this id is in the list.
    pub fn position(&self, id: &str) -> Option<usize> {
        let hash = self.hasher.hash_one(id);
        let found = self
            .index
            .find(hash, |&p| id_at(&self.ids, &self.id_ends, p as usize) == id);
        found.map(|&p| p as usize)
    }

    /// The image with this id, decoded.
    pub fn get(&self, id: &str) -> Result<Option<T>, DecodeError> {
        self.position(id)
            .map(|position| self.decode_at(position))
            .transpose()
    }

    /// The image with this id as stored: its protobuf encoding, not copied.
    pub fn get_encoded(&self, id: &str) -> Option<Bytes> {
        self.position(id)
            .map(|position| self.encoded.slice(span(&self.encoded_ends, position)))
    }

    /// The image at `position` (below [`ImageList::len`]), decoded.
    pub fn decode_at(&self, position: usize) -> Result<T, DecodeError> {
        T::decode(self.encoded_at(position))
    }

    /// The protobuf encoding of the image at `position` (below [`ImageList::len`]).
    pub fn encoded_at(&self, position: usize) -> &[u8] {
        &self.encoded[span(&self.encoded_ends, position)]
    }

    /// The protobuf encoding of the image at `position` (below
    /// [`ImageList::len`]) as stored: a slice of the list's buffer, not copied.
    pub fn encoded_bytes_at(&self, position: usize) -> Bytes {
        self.encoded.slice(span(&self.encoded_ends, position))
    }

    /// The id of the image at `position` (below [`ImageList::len`]).
    pub fn id_at(&self, position: usize) -> &str {
        id_at(&self.ids, &self.id_ends, position)
    }

    /// Every image in catalog order, decoded one at a time.
    pub fn iter(&self) -> impl Iterator<Item = T> + '_ {
        (0..self.len()).map(|position| {
            self.decode_at(position)
                .expect("the list holds only images it encoded itself")
        })
    }

    /// The size of all images encoded as protobuf.
    pub fn encoded_size(&self) -> usize {
        self.encoded.len()
    }
}

/// An [`ImageList`] being filled.
struct Builder {
    encoded: Vec<u8>,
    encoded_ends: Vec<usize>,
    ids: String,
    id_ends: Vec<usize>,
    index: HashTable<u32>,
    hasher: foldhash::fast::RandomState,
}

impl Builder {
    fn append(&mut self, chunk: &EncodedImages) -> Result<(), Duplicate> {
        for i in 0..chunk.len() {
            let id = id_at(&chunk.ids, &chunk.id_ends, i);
            let position = self.id_ends.len();
            let hash = self.hasher.hash_one(id);
            let (ids, id_ends, hasher) = (&self.ids, &self.id_ends, &self.hasher);
            match self.index.entry(
                hash,
                |&p| id_at(ids, id_ends, p as usize) == id,
                |&p| hasher.hash_one(id_at(ids, id_ends, p as usize)),
            ) {
                Entry::Occupied(first) => {
                    return Err(Duplicate {
                        position,
                        first: *first.get() as usize,
                        id: id.to_owned(),
                    });
                }
                Entry::Vacant(slot) => {
                    let position = u32::try_from(position).expect("fewer than 2^32 images");
                    slot.insert(position);
                }
            }
            self.ids.push_str(id);
            self.id_ends.push(self.ids.len());
            self.encoded
                .extend_from_slice(&chunk.encoded[span(&chunk.encoded_ends, i)]);
            self.encoded_ends.push(self.encoded.len());
        }
        Ok(())
    }
}

impl<T> Default for ImageList<T> {
    fn default() -> Self {
        Self {
            encoded: Bytes::new(),
            encoded_ends: Vec::new(),
            ids: String::new(),
            id_ends: Vec::new(),
            index: HashTable::new(),
            hasher: foldhash::fast::RandomState::default(),
            _images: PhantomData,
        }
    }
}

impl<T> Clone for ImageList<T> {
    fn clone(&self) -> Self {
        Self {
            encoded: self.encoded.clone(),
            encoded_ends: self.encoded_ends.clone(),
            ids: self.ids.clone(),
            id_ends: self.id_ends.clone(),
            index: self.index.clone(),
            hasher: self.hasher.clone(),
            _images: PhantomData,
        }
    }
}

/// Two lists are equal when they hold the same images in the same order.
impl<T> PartialEq for ImageList<T> {
    fn eq(&self, other: &Self) -> bool {
        self.encoded == other.encoded
            && self.encoded_ends == other.encoded_ends
            && self.ids == other.ids
            && self.id_ends == other.id_ends
    }
}

impl<T> fmt::Debug for ImageList<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ImageList")
            .field("images", &self.id_ends.len())
            .field("encoded_bytes", &self.encoded.len())
            .finish()
    }
}

/// An id used twice: positions of the repeat and of the first use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Duplicate {
    pub position: usize,
    pub first: usize,
    pub id: String,
}

/// A run of consecutive images, encoded, not yet checked for repeated ids: what
/// one loader thread produces.
#[derive(Debug, Default)]
pub(crate) struct EncodedImages {
    encoded: Vec<u8>,
    encoded_ends: Vec<usize>,
    ids: String,
    id_ends: Vec<usize>,
}

impl EncodedImages {
    pub fn push(&mut self, id: &str, image: &impl Message) {
        self.ids.push_str(id);
        self.id_ends.push(self.ids.len());
        image
            .encode(&mut self.encoded)
            .expect("a Vec grows as needed");
        self.encoded_ends.push(self.encoded.len());
    }

    /// Appends an image that is already encoded.
    pub fn push_encoded(&mut self, id: &str, encoded: &[u8]) {
        self.ids.push_str(id);
        self.id_ends.push(self.ids.len());
        self.encoded.extend_from_slice(encoded);
        self.encoded_ends.push(self.encoded.len());
    }

    pub fn len(&self) -> usize {
        self.id_ends.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::compute::Image;

    fn image(id: &str, name: &str) -> Image {
        Image {
            id: id.into(),
            name: name.into(),
            ..Image::default()
        }
    }

    fn list(chunks: &[Vec<Image>]) -> Result<ImageList<Image>, Duplicate> {
        let chunks: Vec<EncodedImages> = chunks
            .iter()
            .map(|images| {
                let mut chunk = EncodedImages::default();
                for image in images {
                    chunk.push(&image.id, image);
                }
                chunk
            })
            .collect();
        ImageList::from_chunks(chunks)
    }

    #[test]
    fn finds_every_image_by_id_across_chunks() {
        let a = image("a", "first");
        let b = image("bb", "second");
        let c = image("ccc", "third");
        let list = list(&[vec![a.clone(), b.clone()], vec![], vec![c.clone()]]).unwrap();
        assert_eq!(list.len(), 3);
        assert_eq!(list.get("a").unwrap(), Some(a.clone()));
        assert_eq!(list.get("bb").unwrap(), Some(b.clone()));
        assert_eq!(list.get("ccc").unwrap(), Some(c.clone()));
        assert_eq!(list.get("b").unwrap(), None);
        assert_eq!(list.get("").unwrap(), None);
        assert_eq!(list.get_encoded("bb"), Some(Bytes::from(b.encode_to_vec())));
        assert_eq!(list.get_encoded("b"), None);
        assert_eq!(list.encoded_bytes_at(1), Bytes::from(b.encode_to_vec()));
        assert_eq!(list.encoded_bytes_at(2), Bytes::from(c.encode_to_vec()));
        assert_eq!(list.iter().collect::<Vec<_>>(), vec![a, b, c]);
    }

    #[test]
    fn a_repeated_id_names_both_positions() {
        let err = list(&[
            vec![image("a", "x"), image("b", "y")],
            vec![image("a", "z")],
        ])
        .unwrap_err();
        assert_eq!(
            err,
            Duplicate {
                position: 2,
                first: 0,
                id: "a".into()
            }
        );
    }
}
