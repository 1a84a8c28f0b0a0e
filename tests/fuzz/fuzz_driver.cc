// A stand-in for libFuzzer's driver, for toolchains without it (g++; Debian 12's clang 14 cannot
// compile vfplane's C++23). It runs a target's LLVMFuzzerTestOneInput on every corpus file, then on
// a bounded number of inputs mutated from them with a seeded PRNG, so a run is reproducible and
// always ends. Built with ASan and UBSan, a crash or sanitizer report fails the test.
//
//   <target>_fuzz [--iterations N] [--seed S] [--max-len L] CORPUS_DIR_OR_FILE...
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

struct Rng {
  uint64_t state;
  uint64_t next() {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
  }
  size_t below(size_t n) { return n == 0 ? 0 : static_cast<size_t>(next() % n); }
};

// Interesting bytes for text parsers: separators, digits, hex, traversal and control characters.
constexpr char kDictionary[] = "0123456789abcdefABCDEF:./-_, \t\n\r\"\\{}[]#=;%\x00\xff";

std::string mutate(std::string s, Rng& rng, size_t maxLen) {
  int rounds = 1 + static_cast<int>(rng.below(4));
  for (int r = 0; r < rounds; ++r) {
    switch (rng.below(5)) {
      case 0:  // flip a byte
        if (!s.empty()) s[rng.below(s.size())] ^= static_cast<char>(1u << rng.below(8));
        break;
      case 1:  // insert a dictionary byte
        s.insert(s.begin() + static_cast<long>(rng.below(s.size() + 1)),
                 kDictionary[rng.below(sizeof kDictionary - 1)]);
        break;
      case 2:  // erase a run
        if (!s.empty()) {
          size_t at = rng.below(s.size());
          s.erase(at, 1 + rng.below(s.size() - at));
        }
        break;
      case 3:  // duplicate a run
        if (!s.empty()) {
          size_t at = rng.below(s.size());
          s.insert(at, s.substr(at, 1 + rng.below(8)));
        }
        break;
      default:  // overwrite with a dictionary byte
        if (!s.empty()) s[rng.below(s.size())] = kDictionary[rng.below(sizeof kDictionary - 1)];
        break;
    }
  }
  if (s.size() > maxLen) s.resize(maxLen);
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  long iterations = 10000;
  uint64_t seed = 1;
  size_t maxLen = 4096;
  std::vector<std::string> corpus;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--iterations" && i + 1 < argc) {
      iterations = std::atol(argv[++i]);
    } else if (arg == "--seed" && i + 1 < argc) {
      seed = std::strtoull(argv[++i], nullptr, 10);
    } else if (arg == "--max-len" && i + 1 < argc) {
      maxLen = std::strtoull(argv[++i], nullptr, 10);
    } else {
      std::vector<std::filesystem::path> files;
      if (std::filesystem::is_directory(arg)) {
        for (const auto& e : std::filesystem::directory_iterator(arg)) files.push_back(e.path());
      } else {
        files.emplace_back(arg);
      }
      for (const auto& f : files) {
        std::ifstream in(f, std::ios::binary);
        if (!in) {
          std::fprintf(stderr, "fuzz: cannot read %s\n", f.c_str());
          return 2;
        }
        corpus.emplace_back(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
      }
    }
  }
  if (corpus.empty()) corpus.emplace_back();
  for (const auto& input : corpus) {
    LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(input.data()), input.size());
  }
  Rng rng{seed * 0x9e3779b97f4a7c15ull + 1};
  for (long i = 0; i < iterations; ++i) {
    std::string input = mutate(corpus[rng.below(corpus.size())], rng, maxLen);
    LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(input.data()), input.size());
  }
  std::printf("fuzz: %zu corpus inputs and %ld mutations (seed %llu) ran clean\n", corpus.size(),
              iterations, static_cast<unsigned long long>(seed));
  return 0;
}
