//! `ImageService` on Berth's one image store.

use berth_cri_api::v1::image_service_server::ImageService;

use super::CriService;

#[tonic::async_trait]
impl ImageService for CriService {}
