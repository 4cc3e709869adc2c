// camgate WebSocket camera for the AI-Thinker ESP32-CAM.
// Board "AI Thinker ESP32-CAM", PSRAM enabled, partition "Huge APP".
// Library: Links2004/arduinoWebSockets, ArduinoJson. Protocol: docs/device-protocol.md.
// camsim (firmware-sim/) is this sketch's tested twin: keep the two in step.
#include <WiFi.h>
#include <WebSocketsClient.h>
#include <ArduinoJson.h>
#include "esp_camera.h"

const char* WIFI_SSID = "your-ssid";
const char* WIFI_PASS = "your-pass";
const char* HOST = "cams.example.com";     // camgate (or its TLS proxy)
const uint16_t PORT = 443;
const char* PATH = "/ingest/ws?app=live&room=cam1";
const char* KEY = "wsk_...";               // from POST /api/v1/apps/live/ws-ingest

WebSocketsClient ws;
uint32_t targetFps = 10, maxFps = 15, frames = 0, lastFrame = 0, lastStats = 0;
bool ready = false;

void onEvent(WStype_t type, uint8_t* payload, size_t len) {
  if (type == WStype_DISCONNECTED) { ready = false; return; }
  if (type != WStype_TEXT) return;
  JsonDocument msg;
  if (deserializeJson(msg, payload, len)) return;
  const char* t = msg["type"] | "";
  if (!strcmp(t, "ready")) {
    maxFps = msg["maxFps"] | 15;
    if (targetFps > maxFps) targetFps = maxFps;
    ready = true;
  } else if (!strcmp(t, "control")) {            // camgate extension: obey it
    if (msg["fps"].is<uint32_t>()) targetFps = min<uint32_t>(max<uint32_t>(msg["fps"], 1), maxFps);
    sensor_t* s = esp_camera_sensor_get();
    if (msg["quality"].is<int>()) s->set_quality(s, msg["quality"]);
    const char* fs = msg["frameSize"] | "";
    if (!strcmp(fs, "QVGA")) s->set_framesize(s, FRAMESIZE_QVGA);
    else if (!strcmp(fs, "VGA")) s->set_framesize(s, FRAMESIZE_VGA);
    else if (!strcmp(fs, "SVGA")) s->set_framesize(s, FRAMESIZE_SVGA);
    else if (!strcmp(fs, "HD")) s->set_framesize(s, FRAMESIZE_HD);
  }                                               // "error": the close follows
}

void setup() {
  camera_config_t c = {};
  c.pin_pwdn = 32; c.pin_reset = -1; c.pin_xclk = 0; c.pin_sccb_sda = 26; c.pin_sccb_scl = 27;
  c.pin_d7 = 35; c.pin_d6 = 34; c.pin_d5 = 39; c.pin_d4 = 36; c.pin_d3 = 21; c.pin_d2 = 19;
  c.pin_d1 = 18; c.pin_d0 = 5; c.pin_vsync = 25; c.pin_href = 23; c.pin_pclk = 22;
  c.xclk_freq_hz = 20000000; c.ledc_timer = LEDC_TIMER_0; c.ledc_channel = LEDC_CHANNEL_0;
  c.pixel_format = PIXFORMAT_JPEG; c.frame_size = FRAMESIZE_VGA; c.jpeg_quality = 12;
  c.fb_count = 2; c.fb_location = CAMERA_FB_IN_PSRAM; c.grab_mode = CAMERA_GRAB_LATEST;
  if (esp_camera_init(&c) != ESP_OK) ESP.restart();
  WiFi.begin(WIFI_SSID, WIFI_PASS);
  while (WiFi.status() != WL_CONNECTED) delay(250);
  ws.beginSSL(HOST, PORT, PATH);                  // production: beginSslWithCA(root CA)
  String auth = String("Authorization: Bearer ") + KEY;
  ws.setExtraHeaders(auth.c_str());
  ws.onEvent(onEvent);
  ws.enableHeartbeat(15000, 3000, 2);
  ws.setReconnectInterval(3000);                  // the library retries forever
}

void loop() {
  ws.loop();
  uint32_t now = millis();
  if (ws.isConnected() && now - lastFrame >= 1000 / targetFps) {
    lastFrame = now;
    camera_fb_t* fb = esp_camera_fb_get();
    if (fb) { ws.sendBIN(fb->buf, fb->len); frames++; esp_camera_fb_return(fb); }
  }
  if (ws.isConnected() && now - lastStats >= 30000) {
    lastStats = now;
    String s = String("{\"type\":\"stats\",\"fps\":") + targetFps + ",\"rssi\":" + WiFi.RSSI() +
               ",\"heapFree\":" + ESP.getFreeHeap() + ",\"frames\":" + frames + "}";
    ws.sendTXT(s);
  }
}
