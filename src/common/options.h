/* Version checks of the public options structs (docs/conventions.md). */
#ifndef CSGI_COMMON_OPTIONS_H
#define CSGI_COMMON_OPTIONS_H

/*
 * Whether an options struct of this version can be read: every version
 * from 1 to the library's current one is. A program built against an
 * older header passes a smaller version and keeps working; 0 is a struct
 * never initialised and a larger version one from a newer header, whose
 * fields this library cannot know.
 */
#define CSGI_OPTIONS__VERSION_OK(version, current) ((version) >= 1 && (version) <= (current))

#endif /* CSGI_COMMON_OPTIONS_H */
