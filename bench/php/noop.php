<?php

/*
 * A no-op task for the push rows of bench/php.sh: read the payload, as a
 * real handler would, and do nothing with it. Under php-fpm (fastcgi target)
 * the payload is the request body; under php-cli (exec target) it is stdin.
 */

if (PHP_SAPI === 'cli') {
    stream_get_contents(STDIN);
} else {
    file_get_contents('php://input');
}
