/* version.h - the release this tree builds. */
#ifndef DEFER_VERSION_H
#define DEFER_VERSION_H

#define DEFER_VERSION "0.1.0"
/* The beanstalkd release whose protocol deferd speaks. */
#define DEFER_BEANSTALK_COMPAT "1.12"

#endif
