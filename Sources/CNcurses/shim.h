// ncursesw with its wide-character API enabled.
#ifndef TENOPS_CNCURSES_SHIM_H
#define TENOPS_CNCURSES_SHIM_H
#ifndef _XOPEN_SOURCE_EXTENDED
#define _XOPEN_SOURCE_EXTENDED 1
#endif
#include <locale.h>
#include <ncursesw/curses.h>
#endif
