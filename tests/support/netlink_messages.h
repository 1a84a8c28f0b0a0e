// Reading back built netlink messages in tests: the header, and a link message's attributes.
#pragma once

#include <linux/rtnetlink.h>
#include <netlink/attr.h>
#include <netlink/msg.h>

#include <map>

#include "vfplane/netlink/rtnl.h"

namespace vfplane::test {

inline nlmsghdr* hdr(const netlink::NlMsg& m) { return const_cast<nlmsghdr*>(netlink::header(m)); }

// Top-level attributes of a link message, by type.
inline std::map<int, nlattr*> linkAttrs(const netlink::NlMsg& m) {
  std::map<int, nlattr*> out;
  nlattr* pos = nullptr;
  int rem = 0;
  nlmsg_for_each_attr(pos, hdr(m), sizeof(ifinfomsg), rem) out[nla_type(pos)] = pos;
  return out;
}

}  // namespace vfplane::test
