pub(crate) mod agreements;
mod callbacks;
mod sandbox;
