// Module Console.
//
// The ncurses operations console: a model built from informers, pure render functions into a cell grid, and an ncurses backend. Imports OperatorEngine, KubeAPI and CNcurses only. Filled in by issue #8.
// The boundary exists from the start (see ../shared/DESIGN.md); it holds no code yet.
