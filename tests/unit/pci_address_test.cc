#include "vfplane/sriov/pci_address.h"

#include <gtest/gtest.h>

#include <unordered_set>

namespace vfplane::sriov {
namespace {

TEST(PciAddress, ParsesLongForm) {
  auto a = PciAddress::parse("0000:3b:02.7");
  ASSERT_TRUE(a) << a.error().message();
  EXPECT_EQ(a->domain(), 0);
  EXPECT_EQ(a->bus(), 0x3b);
  EXPECT_EQ(a->device(), 0x02);
  EXPECT_EQ(a->function(), 7);
  EXPECT_EQ(a->str(), "0000:3b:02.7");
}

TEST(PciAddress, NormalisesShortFormAndCase) {
  auto a = PciAddress::parse("AF:1F.0");
  ASSERT_TRUE(a) << a.error().message();
  EXPECT_EQ(a->str(), "0000:af:1f.0");
  EXPECT_EQ(PciAddress::parse("FFFF:FF:1f.7")->str(), "ffff:ff:1f.7");
}

TEST(PciAddress, OrdersAndHashes) {
  auto a = *PciAddress::parse("0000:3b:00.1");
  auto b = *PciAddress::parse("0000:3b:01.0");
  EXPECT_LT(a, b);
  EXPECT_EQ(a, *PciAddress::parse("3b:00.1"));
  std::unordered_set<PciAddress> set{a, b, a};
  EXPECT_EQ(set.size(), 2u);
}

class PciAddressRejects : public testing::TestWithParam<std::string> {};

TEST_P(PciAddressRejects, WithMessageNamingInput) {
  auto a = PciAddress::parse(GetParam());
  ASSERT_FALSE(a) << "accepted " << GetParam();
  EXPECT_NE(a.error().message().find("invalid PCI address"), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(BadInputs, PciAddressRejects,
                         testing::Values("",                                 // empty
                                         "0000:3b:02",                       // no function
                                         "0000:3b:02.",                      // empty function
                                         "0000:3b:20.0",                     // device above 1f
                                         "0000:3b:02.8",                     // function above 7
                                         "000:3b:02.0",                      // short domain
                                         "00000:3b:02.0",                    // long domain
                                         "0000:3:02.0",                      // short bus
                                         "0000:3b:2.0",                      // short device
                                         "0000:3b:02.00",                    // two-digit function
                                         " 0000:3b:02.0",                    // leading blank
                                         "0000:3b:02.0\n",                   // trailing newline
                                         "0000:3b:02.0/../../x",             // traversal
                                         "../0000:3b:02.0",                  // traversal
                                         "0000:3b:02.0/",                    // slash
                                         "0000:3g:02.0",                     // not hex
                                         "0000:3b:02:0",                     // wrong separator
                                         "0000.3b.02.0",                     // wrong separators
                                         "0000:3b:02.0.1",                   // extra part
                                         "0000:0000:3b:02.0",                // extra colon
                                         "+000:3b:02.0",                     // sign
                                         "0x00:3b:02.0",                     // 0x prefix
                                         std::string("0000:3b:02.0\0", 13),  // embedded NUL
                                         "ens1f0"));                         // a netdev name

TEST(PciAddress, MessageShowsControlCharactersEscaped) {
  auto a = PciAddress::parse("0000:3b:02.0\n");
  ASSERT_FALSE(a);
  EXPECT_NE(a.error().message().find("\\n"), std::string::npos) << a.error().message();
}

}  // namespace
}  // namespace vfplane::sriov
