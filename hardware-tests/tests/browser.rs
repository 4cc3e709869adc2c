//! Headless Chromium watches a camera in camgate's player page (an `<img>` on
//! the MJPEG URL) and the picture is proven to change between two reads.

use std::process::Command;

use camgate_hardware_tests::{Gateway, peer_available, spawn_camsim};

#[tokio::test]
async fn chromium_player_page_shows_a_moving_picture() {
    if !peer_available("chromium") || !peer_available("node") {
        return;
    }
    let script_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("browser");
    if !script_dir.join("node_modules/playwright-core").exists() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "playwright-core not installed in hardware-tests/browser (scripts/test runs npm ci)"
        );
        eprintln!("SKIP: playwright-core not installed (scripts/test installs it)");
        return;
    }
    let gw = Gateway::start(&[]);
    let m = gw.mint("browser").await;
    let mut camsim = spawn_camsim(&m, "10", "60");
    gw.wait_live(&m.mjpeg_url).await;
    let shot = gw.data_dir.join("player.png");
    let out = tokio::task::spawn_blocking({
        let url = format!("{}?mode=mjpeg", m.player_url);
        let shot = shot.clone();
        move || {
            Command::new("node")
                .arg(script_dir.join("mjpeg-player.mjs"))
                .arg(url)
                .arg(shot)
                .output()
                .expect("run node")
        }
    })
    .await
    .expect("join");
    let _ = camsim.kill();
    let _ = camsim.wait();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "browser script failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_str(stdout.trim()).expect("json result");
    assert_eq!(
        (v["width"].as_u64(), v["height"].as_u64()),
        (Some(320), Some(240)),
        "{v}"
    );
    let changed = v["changedPixels"].as_u64().expect("count");
    // A moving bar and counter change far more than 1 % of the picture.
    assert!(changed > 768, "picture did not change: {v}");
    assert_eq!(v["state"], "LIVE");
    assert!(
        v["shownWidth"].as_u64().unwrap_or(0) >= 320,
        "picture not shown on screen: {v}"
    );
    assert!(shot.exists(), "screenshot written");
}
