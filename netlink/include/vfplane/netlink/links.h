// Kernel link operations, behind an interface so that callers can be tested with fakes.
//
// NetlinkLinks implements them over an Rtnl socket in the network namespace it was opened in:
// each request is one of rtnl.h's builders, sent with an ACK wait, so a failure is reported with
// the kernel's errno and the link's name.
#pragma once

#include <memory>
#include <string_view>

#include "vfplane/base/error.h"
#include "vfplane/netlink/rtnl.h"

namespace vfplane::netlink {

class LinkOps {
 public:
  virtual ~LinkOps() = default;
  virtual Result<void> addVethPair(std::string_view name, std::string_view peer) = 0;
  virtual Result<void> addBridge(std::string_view name) = 0;
  virtual Result<void> setMaster(std::string_view name, std::string_view master) = 0;
  virtual Result<void> setUp(std::string_view name, bool up) = 0;
  // Deleting a missing link fails with sysErrno() == ENODEV.
  virtual Result<void> remove(std::string_view name) = 0;
  virtual bool exists(std::string_view name) = 0;
};

class NetlinkLinks final : public LinkOps {
 public:
  // In the calling thread's network namespace.
  static Result<std::unique_ptr<NetlinkLinks>> open();

  Result<void> addVethPair(std::string_view name, std::string_view peer) override;
  Result<void> addBridge(std::string_view name) override;
  Result<void> setMaster(std::string_view name, std::string_view master) override;
  Result<void> setUp(std::string_view name, bool up) override;
  Result<void> remove(std::string_view name) override;
  bool exists(std::string_view name) override;

 private:
  explicit NetlinkLinks(Rtnl rtnl) : rtnl_(std::move(rtnl)) {}
  // The link's index; ENODEV "find link <name>: No such device" when there is none.
  Result<int> index(std::string_view name);
  Rtnl rtnl_;
};

// Linux interface names are at most 15 bytes and may not contain '/', ':' or blanks.
Result<void> validateIfName(std::string_view name);

}  // namespace vfplane::netlink
