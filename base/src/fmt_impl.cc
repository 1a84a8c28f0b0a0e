// The compiled half of {fmt}, built from Debian's libfmt-dev headers into our own static library.
//
// Why: Debian ships fmt and spdlog only as shared libraries. A CNI plugin is exec'd for every ADD,
// DEL and CHECK, and resolving ~3000 C++ symbols across libfmt/libspdlog/libstdc++ cost about 2.5
// ms of each 3 ms start (perf: 36% of the process in ld.so's symbol lookup). Building these two
// translation units ourselves lets the plugins link fully static (0.4 ms start) and spares every
// other binary two shared libraries. Same headers, same version as the packaged library.
#include <fmt/format-inl.h>

FMT_BEGIN_NAMESPACE
namespace detail {
// The non-template functions come from format-inl.h above; these are the templates it leaves for
// the library to instantiate and that our code (through fmt::format's locale handling) uses.
template FMT_API auto thousands_sep_impl(locale_ref) -> thousands_sep_result<char>;
template FMT_API auto decimal_point_impl(locale_ref) -> char;
template FMT_API void buffer<char>::append(const char*, const char*);
template FMT_API void vformat_to(buffer<char>&, string_view,
                                 basic_format_args<FMT_BUFFER_CONTEXT(char)>, locale_ref);
}  // namespace detail
FMT_END_NAMESPACE
