// PciAddress::parse is the guard against path traversal, so beyond not crashing it must never
// accept something that does not print back as itself in canonical form.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "vfplane/sriov/pci_address.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto a = vfplane::sriov::PciAddress::parse(text);
  if (!a) {
    if (a.error().message().empty()) std::abort();
    return 0;
  }
  std::string canonical = a->str();
  if (canonical.size() != 12 || canonical.find_first_of("/ \n\t\0") != std::string::npos)
    std::abort();
  auto again = vfplane::sriov::PciAddress::parse(canonical);
  if (!again || *again != *a) std::abort();
  // What was accepted is the canonical form, or its short or upper-case spelling.
  if (text.size() != 12 && text.size() != 7) std::abort();
  return 0;
}
