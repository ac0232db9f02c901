// Reads the tfvae metadata of a .tflite file without TensorFlow or Python, and prints
// what an app needs from it: the preprocessing the graph applies and the
// anomaly-score thresholds, then the whole metadata JSON.
//
//   read_metadata vae_int8.tflite
//
// The metadata is the buffer named "tfvae" in the TFLite schema's Model.metadata
// list, UTF-8 JSON (keys, types and units: export/metadata_schema.json). The
// flatbuffer is read with code that flatc generates from tflite_metadata.fbs,
// the JSON with flatbuffers' own parser (into a FlexBuffer). Output lines are
// `key value`; numbers are printed with 17 significant digits, so they read
// back as the same float64. Exit status 1 on any error, with a message on stderr.

#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "flatbuffers/flexbuffers.h"
#include "flatbuffers/idl.h"
#include "tflite_metadata_generated.h"

namespace {

constexpr char kMetadataName[] = "tfvae";

int Fail(const std::string& message) {
  std::fprintf(stderr, "read_metadata: %s\n", message.c_str());
  return 1;
}

// The bytes of the buffer `index` of `model`, wherever the file keeps them.
bool BufferBytes(const tflite::Model* model, const std::vector<char>& file, uint32_t index,
                 std::string* bytes) {
  if (model->buffers() == nullptr || index >= model->buffers()->size()) return false;
  const tflite::Buffer* buffer = model->buffers()->Get(index);
  if (buffer->data() != nullptr && buffer->data()->size() > 0) {
    bytes->assign(reinterpret_cast<const char*>(buffer->data()->data()), buffer->data()->size());
    return true;
  }
  if (buffer->offset() > 1 && buffer->offset() + buffer->size() <= file.size()) {
    bytes->assign(file.data() + buffer->offset(), buffer->size());
    return true;
  }
  return false;
}

void PrintNumber(const std::string& key, flexbuffers::Reference value) {
  if (value.IsNull()) {
    std::printf("%s null\n", key.c_str());
  } else {
    std::printf("%s %.17g\n", key.c_str(), value.AsDouble());
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) return Fail("usage: read_metadata FILE.tflite");
  std::ifstream stream(argv[1], std::ios::binary);
  if (!stream) return Fail(std::string("cannot open ") + argv[1]);
  std::vector<char> file((std::istreambuf_iterator<char>(stream)), std::istreambuf_iterator<char>());

  flatbuffers::Verifier verifier(reinterpret_cast<const uint8_t*>(file.data()), file.size());
  if (!tflite::ModelBufferHasIdentifier(file.data()) || !tflite::VerifyModelBuffer(verifier)) {
    return Fail(std::string(argv[1]) + " is not a TensorFlow Lite model");
  }
  const tflite::Model* model = tflite::GetModel(file.data());

  std::string json;
  bool found = false;
  if (model->metadata() != nullptr) {
    for (const tflite::Metadata* entry : *model->metadata()) {
      if (entry->name() != nullptr && entry->name()->str() == kMetadataName) {
        found = BufferBytes(model, file, entry->buffer(), &json);
        break;
      }
    }
  }
  if (!found) return Fail(std::string(argv[1]) + " carries no tfvae metadata");

  flatbuffers::Parser parser;
  flexbuffers::Builder builder;
  if (!parser.ParseFlexBuffer(json.c_str(), nullptr, &builder)) {
    return Fail("the tfvae metadata is not JSON: " + parser.error_);
  }
  flexbuffers::Map root = flexbuffers::GetRoot(builder.GetBuffer()).AsMap();

  std::printf("format %s\n", root["format"].AsString().c_str());
  std::printf("format_version %lld\n", static_cast<long long>(root["format_version"].AsInt64()));
  std::printf("file %s\n", root["file"].AsString().c_str());
  std::printf("signature_runner_required %s\n",
              root["signature_runner_required"].AsBool() ? "true" : "false");

  // x = (raw - offset) / divisor, then 1 where x > binarize_threshold (scaled units).
  flexbuffers::Map preprocessing = root["model"].AsMap()["preprocessing"].AsMap();
  const char* keys[] = {"offset", "divisor", "binarize_threshold"};
  for (const char* key : keys) {
    flexbuffers::Reference value = preprocessing[key];
    if (value.IsVector()) {  // per feature
      flexbuffers::Vector values = value.AsVector();
      for (size_t i = 0; i < values.size(); ++i) {
        PrintNumber(std::string("preprocessing.") + key + "[" + std::to_string(i) + "]", values[i]);
      }
    } else {
      PrintNumber(std::string("preprocessing.") + key, value);
    }
  }

  flexbuffers::Reference thresholds = root["score_thresholds"];
  if (thresholds.IsNull()) {
    std::printf("score_thresholds null\n");
  } else {
    flexbuffers::Map by_rate = thresholds.AsMap()["by_false_positive_rate"].AsMap();
    flexbuffers::TypedVector rates = by_rate.Keys();
    for (size_t i = 0; i < rates.size(); ++i) {
      std::string rate = rates[i].AsKey();
      PrintNumber("score_thresholds." + rate, by_rate[rate]);
    }
    std::printf("score_thresholds.rule %s\n",
                thresholds.AsMap()["rule"].AsString().c_str());
  }
  std::printf("json %s\n", json.c_str());
  return 0;
}
