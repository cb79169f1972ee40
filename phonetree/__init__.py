"""phonetree: telephone trees and daily check-ins for peer-support groups."""
