// ncursesw with its wide-character API enabled.
#ifndef TENOPS_CNCURSES_SHIM_H
#define TENOPS_CNCURSES_SHIM_H
#ifndef _XOPEN_SOURCE_EXTENDED
#define _XOPEN_SOURCE_EXTENDED 1
#endif
#include <locale.h>
#include <ncursesw/curses.h>

// curses' globals, read through functions: Swift 6 refuses to touch a C global variable from
// code it cannot prove single-threaded; the console reads them on its terminal thread only.
static inline WINDOW *tenops_stdscr(void) { return stdscr; }
static inline int tenops_colors(void) { return COLORS; }
#endif
